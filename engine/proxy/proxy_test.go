package proxy_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/engine/proxy"
)

func TestQueriesThroughProxy(t *testing.T) {
	b := newBackend(t)
	if _, err := b.Wake(context.Background()); err != nil {
		t.Fatalf("start backend: %v", err)
	}
	p := startProxy(t, b, proxy.Options{})

	// libpq's default sslmode=prefer asks for TLS, is told 'N', goes on plain.
	out, stderr, code := psql(t, p, appRole, "SELECT current_user, 6*7", "PGSSLMODE=prefer")
	if code != 0 || out != "app|42" {
		t.Fatalf("psql sslmode=prefer: exit %d, out %q, stderr %q", code, out, stderr)
	}

	conn := connect(t, proxyURL(p, appRole, "prefer"))
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM generate_series(1, $1::int)", 1000).Scan(&n); err != nil || n != 1000 {
		t.Fatalf("pgx through proxy: n=%d err=%v", n, err)
	}

	_, stderr, code = psql(t, p, appRole, "SELECT 1", "PGSSLMODE=require")
	if code == 0 || !strings.Contains(stderr, "server does not support SSL, but SSL was required") {
		t.Fatalf("psql sslmode=require: exit %d, stderr %q; want libpq's no-SSL error", code, stderr)
	}
	if b.starts.Load() != 1 {
		t.Fatalf("backend started %d times, want 1", b.starts.Load())
	}
}

func TestWakeOnConnect(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b, proxy.Options{})
	if b.running() {
		t.Fatal("backend runs before any connection")
	}

	out, stderr, code := psql(t, p, appRole, "CREATE TABLE kept(v text); INSERT INTO kept VALUES ('before suspend'); SELECT 'woke'")
	if code != 0 || out != "woke" {
		t.Fatalf("first psql: exit %d, out %q, stderr %q", code, out, stderr)
	}
	if !b.running() || b.starts.Load() != 1 {
		t.Fatalf("after first connection: running=%v starts=%d", b.running(), b.starts.Load())
	}

	b.stop()
	const clients = 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			conn, err := pgx.Connect(ctx, proxyURL(p, appRole, "prefer"))
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(ctx)
			var v string
			var k int
			if err := conn.QueryRow(ctx, "SELECT v, $1::int FROM kept", i).Scan(&v, &k); err != nil {
				errs <- err
				return
			}
			if v != "before suspend" || k != i {
				errs <- errors.New("wrong row: " + v)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("client: %v", err)
	}
	if got := b.starts.Load(); got != 2 {
		t.Fatalf("backend started %d times in all, want 2 (one per wake)", got)
	}
}

func TestWakeFailureIsAnErrorResponse(t *testing.T) {
	p := startProxy(t, failBackend{errors.New("no space left on device (test)")}, proxy.Options{})

	_, stderr, code := psql(t, p, appRole, "SELECT 1")
	want := `FATAL:  branch "test" could not be started: no space left on device (test)`
	if code != 2 || !strings.Contains(stderr, want) {
		t.Fatalf("psql: exit %d, stderr %q; want exit 2 and %q", code, stderr, want)
	}

	_, err := pgx.Connect(context.Background(), proxyURL(p, appRole, "disable"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P03" || pgErr.Severity != "FATAL" {
		t.Fatalf("pgx: %v; want FATAL 57P03", err)
	}
	if st := p.Stats(); st.WakeErrors != 2 || st.Sessions != 0 {
		t.Fatalf("stats %+v; want 2 wake errors, no sessions", st)
	}
}

func TestRefusesSuperuser(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b, proxy.Options{RefuseUser: "postgres"})

	_, stderr, code := psql(t, p, "postgres", "SELECT 1")
	want := `FATAL:  role "postgres" is the superuser, which cannot connect through pgtwin`
	if code != 2 || !strings.Contains(stderr, want) {
		t.Fatalf("psql as superuser: exit %d, stderr %q; want %q", code, stderr, want)
	}
	_, err := pgx.Connect(context.Background(), proxyURL(p, "postgres", "disable"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28000" {
		t.Fatalf("pgx as superuser: %v; want 28000", err)
	}
	if b.starts.Load() != 0 {
		t.Fatal("a refused login woke the backend")
	}
	if st := p.Stats(); st.Refused != 2 || st.Sessions != 0 {
		t.Fatalf("stats %+v; want 2 refused, no sessions", st)
	}
}

func TestActivityTracking(t *testing.T) {
	b := newBackend(t)
	var events atomic.Int32
	p := startProxy(t, b, proxy.Options{OnActivity: func() { events.Add(1) }})
	if p.Active() != 0 {
		t.Fatalf("Active = %d before any client", p.Active())
	}
	t0 := p.LastActive()
	time.Sleep(5 * time.Millisecond)

	conn := connect(t, proxyURL(p, appRole, "disable"))
	if p.Active() != 1 {
		t.Fatalf("Active = %d with one client", p.Active())
	}
	t1 := p.LastActive()
	if !t1.After(t0) {
		t.Fatalf("LastActive %v did not move on connect (was %v)", t1, t0)
	}
	conn2 := connect(t, proxyURL(p, appRole, "disable"))
	if p.Active() != 2 {
		t.Fatalf("Active = %d with two clients", p.Active())
	}

	time.Sleep(5 * time.Millisecond)
	closed := time.Now()
	conn.Close(context.Background())
	conn2.Close(context.Background())
	eventually(t, "Active to reach 0", func() bool { return p.Active() == 0 })
	if la := p.LastActive(); la.Before(closed) {
		t.Fatalf("LastActive %v is before the clients closed at %v", la, closed)
	}
	if n := events.Load(); n != 4 {
		t.Fatalf("OnActivity called %d times, want 4 (two begins, two ends)", n)
	}
	if st := p.Stats(); st.Accepted != 2 || st.Sessions != 2 {
		t.Fatalf("stats %+v; want 2 accepted, 2 sessions", st)
	}
}

func TestStartStop(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b, proxy.Options{})

	// The same address again is taken.
	q := proxy.New(proxy.Options{Addr: p.Addr().String(), Backend: b})
	if err := q.Start(context.Background()); !errors.Is(err, proxy.ErrAddrInUse) {
		t.Fatalf("second listener on %s: %v; want ErrAddrInUse", p.Addr(), err)
	}
	q.Stop()

	// Sessions outlive Stop unless asked otherwise.
	conn := connect(t, proxyURL(p, appRole, "disable"))
	p.Stop()
	p.Stop()
	if _, err := conn.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatalf("session after Stop: %v", err)
	}
	if _, err := pgx.Connect(context.Background(), proxyURL(p, appRole, "disable")); err == nil {
		t.Fatal("connected after Stop")
	}

	// With CloseSessionsOnStop, Stop ends them.
	r := startProxy(t, b, proxy.Options{CloseSessionsOnStop: true})
	conn = connect(t, proxyURL(r, appRole, "disable"))
	r.Stop()
	if r.Active() != 0 {
		t.Fatalf("Active = %d after Stop closed sessions", r.Active())
	}
	if _, err := conn.Exec(context.Background(), "SELECT 1"); err == nil {
		t.Fatal("session still works after Stop with CloseSessionsOnStop")
	}

	// Cancelling Start's context stops the listener too.
	ctx, cancel := context.WithCancel(context.Background())
	s := proxy.New(proxy.Options{Addr: "127.0.0.1:0", Backend: b})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	cancel()
	eventually(t, "listener to close", func() bool {
		c, err := (&netDialer).Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// slowBackend never finishes starting.
type slowBackend struct{ waking chan struct{} }

func (s slowBackend) Wake(ctx context.Context) (string, error) {
	s.waking <- struct{}{}
	<-ctx.Done()
	return "", ctx.Err()
}

func TestWakeTimeout(t *testing.T) {
	sb := slowBackend{waking: make(chan struct{}, 1)}
	p := startProxy(t, sb, proxy.Options{WakeTimeout: 500 * time.Millisecond})
	type result struct {
		stderr string
		code   int
	}
	res := make(chan result, 1)
	go func() {
		_, stderr, code := psql(t, p, appRole, "SELECT 1")
		res <- result{stderr, code}
	}()
	<-sb.waking
	// A client waiting for a start counts as active, so that an idle sweeper
	// does not stop what it is waiting for.
	if p.Active() != 1 {
		t.Fatalf("Active = %d while a client waits for the wake", p.Active())
	}
	r := <-res
	want := `FATAL:  branch "test" did not start within 500ms`
	if r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Fatalf("psql: exit %d, stderr %q; want %q", r.code, r.stderr, want)
	}
}

func TestSuspendIdle(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b, proxy.Options{})
	stop := func() error { b.stop(); return nil }

	conn := connect(t, proxyURL(p, appRole, "disable"))
	if ok, _ := p.SuspendIdle(0, stop); ok || !b.running() {
		t.Fatal("suspended with a client connected")
	}
	conn.Close(context.Background())
	eventually(t, "Active to reach 0", func() bool { return p.Active() == 0 })
	if ok, _ := p.SuspendIdle(time.Hour, stop); ok || !b.running() {
		t.Fatal("suspended before the idle time passed")
	}
	time.Sleep(20 * time.Millisecond)
	if ok, err := p.SuspendIdle(10*time.Millisecond, stop); !ok || err != nil || b.running() {
		t.Fatalf("idle backend not suspended: ran=%v err=%v running=%v", ok, err, b.running())
	}

	// A client arriving while a slow stop runs waits for it, then wakes the
	// instance: its session is not cut by that stop.
	if _, err := b.Wake(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopping := make(chan struct{})
	slowStop := func() error {
		close(stopping)
		time.Sleep(500 * time.Millisecond)
		b.stop()
		return nil
	}
	done := make(chan error, 1)
	go func() {
		<-stopping
		out, stderr, code := psql(t, p, appRole, "SELECT 'served' FROM pg_sleep(1)")
		if code != 0 || out != "served" {
			done <- errors.New("psql: " + out + " " + stderr)
			return
		}
		done <- nil
	}()
	if ok, err := p.SuspendIdle(0, slowStop); !ok || err != nil {
		t.Fatalf("suspend: ran=%v err=%v", ok, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("client during a stop: %v", err)
	}
	if !b.running() || b.starts.Load() != 3 {
		t.Fatalf("after the racing client: running=%v starts=%d, want running after a third start", b.running(), b.starts.Load())
	}
}
