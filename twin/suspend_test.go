package twin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/twin/api"
)

// With max_running 2, a third branch suspends the least recently used idle
// one; with every running branch in use, a wake fails with a clear error
// that the client receives; the metrics show states, wakes and connections.
func TestRunningCapAndMetrics(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	l.Close()
	f := newFx(t, "btrfs", func(c *config.Config) {
		c.Branches.MaxRunning = 2
		c.Branches.IdleSuspend = 0
		c.Daemon.MetricsAddress = metricsAddr
	})
	ctx := context.Background()
	a := f.create(alice, api.CreateBranchRequest{Name: "a"})
	b := f.create(alice, api.CreateBranchRequest{Name: "b"})
	// a is used last: b is the least recently used.
	dial(t, a.ConnectionURI).Close(ctx)
	f.create(alice, api.CreateBranchRequest{Name: "c"})
	if st := f.record("b").State; st != api.StateSuspended {
		t.Fatalf("b is %s after a third branch was made with max_running 2; want suspended", st)
	}
	if st := f.record("a").State; st != api.StateReady {
		t.Fatalf("a (used last) is %s; want ready", st)
	}
	if st := f.tw.Status(ctx, alice); st.Running != 2 || st.Suspended != 1 {
		t.Fatalf("status: running %d suspended %d", st.Running, st.Suspended)
	}

	// Hold a session on a and on c: waking b has nothing to evict.
	ca := dial(t, a.ConnectionURI)
	cc := dial(t, f.tw.mustURI(t, "c"))
	_, err = pgx.Connect(ctx, b.ConnectionURI)
	if err == nil || !strings.Contains(err.Error(), "branches.max_running") {
		t.Fatalf("waking b with every running branch in use: got %v, want a max_running error", err)
	}
	t.Logf("client saw: %v", err)
	if _, err := f.tw.ResumeBranch(ctx, alice, "b"); !errors.Is(err, ErrLimit) {
		t.Fatalf("resume b at the cap: got %v, want ErrLimit", err)
	}
	cc.Close(ctx)
	// c is idle now: b wakes, c is suspended.
	exec(t, dial(t, b.ConnectionURI), "SELECT 1")
	if st := f.record("c").State; st != api.StateSuspended {
		t.Fatalf("c is %s after b woke; want suspended", st)
	}
	exec(t, ca, "SELECT 1")
	// The daemon's sync reports each finished run here (cmd/pgtwin/syncer.go).
	f.tw.SyncMetrics().SyncFinished(3*time.Second, nil)

	// daemon.metrics_address serves them.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics on daemon.metrics_address: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`pgtwin_branches{state="ready"} 2`,
		`pgtwin_branches{state="suspended"} 1`,
		`pgtwin_branches_running 2`,
		`pgtwin_branch_wake_duration_seconds_count 1`,
		`pgtwin_branch_wake_errors_total 0`,
		`pgtwin_branch_create_duration_seconds_count 3`,
		`pgtwin_proxy_connections_total{outcome="wake_failed"} `,
		`pgtwin_sync_lag_bytes`,
		`pgtwin_sync_duration_seconds_count{result="ok"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(string(body), `pgtwin_proxy_connections_total{outcome="wake_failed"} 0`) {
		t.Errorf("metrics count no failed wake")
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}

// Suspend and resume over the socket API, for names that end like actions.
func TestSuspendAPI(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", nil)
	ln, err := f.tw.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.tw.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	cl := api.NewClient(f.cfg.Daemon.Socket)
	for _, name := range []string{"x/suspend", "y/resume"} {
		if _, err := cl.CreateBranch(ctx, api.CreateBranchRequest{Name: name}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		b, err := cl.SuspendBranch(ctx, name)
		if err != nil || b.Name != name || b.State != api.StateSuspended {
			t.Fatalf("suspend %s: %+v %v", name, b, err)
		}
		if _, ok := f.eng.Instance(f.record(name).ID); ok {
			t.Fatalf("%s suspended but its instance runs", name)
		}
		if b, err = cl.SuspendBranch(ctx, name); err != nil || b.State != api.StateSuspended {
			t.Fatalf("suspend of a suspended branch: %+v %v", b, err)
		}
		if b, err = cl.ResetBranch(ctx, name); err != nil || b.State != api.StateSuspended {
			t.Fatalf("reset of a suspended branch: %+v %v", b, err)
		}
		b, err = cl.ResumeBranch(ctx, name)
		if err != nil || b.Name != name || b.State != api.StateReady {
			t.Fatalf("resume %s: %+v %v", name, b, err)
		}
		if _, ok := f.eng.Instance(f.record(name).ID); !ok {
			t.Fatalf("%s resumed but its instance does not run", name)
		}
		exec(t, dial(t, b.ConnectionURI), "SELECT 1")
	}
	if st := f.tw.Status(ctx, RootCaller); st.Running != 2 || st.Suspended != 0 || st.BranchMemory <= 0 {
		t.Fatalf("status: running %d, suspended %d, memory %d", st.Running, st.Suspended, st.BranchMemory)
	}
	if _, err := cl.SuspendBranch(ctx, "nope"); err == nil {
		t.Fatal("suspend of a missing branch succeeded")
	}
}
