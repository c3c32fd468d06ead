package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/twin/api"
)

// branchVolume is the volume id the daemon recorded for branch name.
func (d *daemon) branchVolume(t *testing.T, name string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(d.DataDir, "state", "branches", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var rec struct{ ID, Name string }
		if json.Unmarshal(b, &rec) == nil && rec.Name == name {
			return rec.ID
		}
	}
	t.Fatalf("no record of branch %s under %s/state/branches", name, d.DataDir)
	return ""
}

// branchPostmasters are the postmasters running on branch volumes (not
// main's), from /proc.
func branchPostmasters(d *daemon) map[string]int {
	out := map[string]int{}
	for _, p := range postmasters(d.DataDir) {
		vol := filepath.Base(filepath.Dir(p.pgdata))
		if strings.HasPrefix(vol, "b-") {
			out[vol] = p.pid
		}
	}
	return out
}

// psql runs psql with a URL and returns stdout, stderr and the exit code.
func psql(t *testing.T, uri string, sql string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(pgtest.BinDir(), "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql, uri)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C", "PGCONNECT_TIMEOUT=60"}
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return strings.TrimSpace(out.String()), strings.TrimSpace(errb.String()), code
}

func startItemsDaemon(t *testing.T, o daemonOpts) *daemon {
	t.Helper()
	d := startDaemon(t, o)
	d.mainExec(t, "CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
	d.snapshot(t)
	return d
}

func (d *daemon) waitState(t *testing.T, name, state string, timeout time.Duration) api.Branch {
	t.Helper()
	var b api.Branch
	eventually(t, timeout, fmt.Sprintf("branch %s %s", name, state), func() bool {
		b = d.get(t, root, name)
		return b.State == state
	})
	return b
}

// An idle branch is suspended (its postmaster gone), its unchanged URL
// wakes it, and what was written before is there; suspend, resume, reset
// and delete work on a suspended branch.
func TestSuspendIdleAndWake(t *testing.T) {
	d := startItemsDaemon(t, daemonOpts{Driver: "btrfs", Branches: `idle_suspend = "2s"`})
	b := d.create(t, root, "idle/a")
	vol := d.branchVolume(t, "idle/a")
	execURI(t, b.ConnectionURI, "INSERT INTO items VALUES (5001, 'written before suspend')")

	s := d.waitState(t, "idle/a", api.StateSuspended, 30*time.Second)
	if s.ConnectionURI != b.ConnectionURI || s.Port != b.Port {
		t.Fatalf("suspend changed the URL: %s -> %s", redact(b.ConnectionURI), redact(s.ConnectionURI))
	}
	// The state is recorded before the postmaster is stopped (write before
	// act), so the stop may still be under way: give it the time a fast
	// shutdown takes.
	eventually(t, 15*time.Second, "suspended branch's postmaster gone", func() bool {
		_, ok := branchPostmasters(d)[vol]
		return !ok
	})
	if st := d.status(t); st.Suspended != 1 || st.Running != 0 {
		t.Fatalf("status while suspended: running %d, suspended %d; want 0, 1", st.Running, st.Suspended)
	}
	if got := listeningPorts(t, b.Port, b.Port); len(got) != 1 {
		t.Fatalf("nothing listens on the suspended branch's port %d", b.Port)
	}

	out, stderr, code := psql(t, b.ConnectionURI, "SELECT note FROM items WHERE id = 5001")
	if code != 0 || out != "written before suspend" {
		t.Fatalf("psql on the suspended branch's URL: exit %d, out %q, stderr %q", code, out, stderr)
	}
	if _, ok := branchPostmasters(d)[vol]; !ok {
		t.Fatalf("psql got an answer but no postmaster runs on %s", vol)
	}
	if got := d.get(t, root, "idle/a").State; got != api.StateReady {
		t.Fatalf("after wake the branch is %s, want ready", got)
	}
	st := d.status(t)
	if st.Running != 1 || st.BranchMemory <= 0 {
		t.Fatalf("status after wake: running %d, branch memory %d", st.Running, st.BranchMemory)
	}
	t.Logf("branch memory with one branch running: %d bytes", st.BranchMemory)

	// By hand: suspend and resume.
	if got := decode[api.Branch](t, d.must(root, "branches", "suspend", "idle/a", "-o", "json")); got.State != api.StateSuspended {
		t.Fatalf("suspend: state %s", got.State)
	}
	if _, ok := branchPostmasters(d)[vol]; ok {
		t.Fatal("suspend returned but the postmaster runs")
	}
	if got := decode[api.Branch](t, d.must(root, "branches", "resume", "idle/a", "-o", "json")); got.State != api.StateReady {
		t.Fatalf("resume: state %s", got.State)
	}
	if _, ok := branchPostmasters(d)[vol]; !ok {
		t.Fatal("resume returned but no postmaster runs")
	}

	// Reset of a suspended branch leaves it suspended, with the write gone.
	d.must(root, "branches", "suspend", "idle/a")
	if r := d.reset(t, root, "idle/a"); r.State != api.StateSuspended {
		t.Fatalf("reset of a suspended branch: state %s, want suspended", r.State)
	}
	if _, ok := branchPostmasters(d)[vol]; ok {
		t.Fatal("reset of a suspended branch left its postmaster running")
	}
	if n := queryInt(t, b.ConnectionURI, "SELECT count(*) FROM items WHERE id = 5001"); n != 0 {
		t.Fatal("reset did not throw the write away")
	}

	// Delete of a suspended branch frees its port.
	d.must(root, "branches", "suspend", "idle/a")
	d.must(root, "branches", "delete", "idle/a")
	if got := listeningPorts(t, b.Port, b.Port); len(got) != 0 {
		t.Fatalf("port %d still listens after delete", b.Port)
	}
	if len(branchPostmasters(d)) != 0 {
		t.Fatal("a branch postmaster runs after delete")
	}
}

// Twenty clients connecting at once to a suspended branch all get in.
func TestWakeStampede(t *testing.T) {
	d := startItemsDaemon(t, daemonOpts{Driver: "btrfs", Settings: map[string]string{"max_connections": "40"}})
	b := d.create(t, root, "stampede")
	d.must(root, "branches", "suspend", "stampede")
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			conn, err := pgx.Connect(ctx, b.ConnectionURI)
			if err != nil {
				errs[i] = err
				return
			}
			defer conn.Close(context.Background())
			var c int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM items, pg_sleep(0.2)").Scan(&c); err != nil {
				errs[i] = err
			} else if c != 1000 {
				errs[i] = fmt.Errorf("count %d, want 1000", c)
			}
		}()
	}
	close(start)
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			t.Errorf("client %d: %v", i, err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d clients failed", failed, n)
	}
	if got := d.get(t, root, "stampede").State; got != api.StateReady {
		t.Fatalf("after the stampede the branch is %s", got)
	}
}

// A branch that cannot start answers with a PostgreSQL error that psql
// prints, and works again once the cause is gone.
func TestWakeError(t *testing.T) {
	d := startItemsDaemon(t, daemonOpts{Driver: "btrfs"})
	b := d.create(t, root, "broken")
	vol := d.branchVolume(t, "broken")
	d.must(root, "branches", "suspend", "broken")

	volRoot, _ := volumes(t, d.DataDir)
	auto := filepath.Join(volRoot, vol, "pgdata", "postgresql.auto.conf")
	orig, err := os.ReadFile(auto)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(auto, append(append([]byte{}, orig...), "shared_buffers = 'lots'\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := psql(t, b.ConnectionURI, "SELECT 1")
	t.Logf("psql stderr: %s", stderr)
	if code == 0 {
		t.Fatalf("psql succeeded (%q) on a branch that cannot start", out)
	}
	for _, want := range []string{`FATAL:  branch "broken" could not be started`, "shared_buffers"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("psql stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "server closed the connection unexpectedly") {
		t.Errorf("psql saw a dropped connection, not an error message:\n%s", stderr)
	}
	if got := d.get(t, root, "broken").State; got != api.StateSuspended {
		t.Errorf("after a failed wake the branch is %s, want suspended", got)
	}

	if err := os.WriteFile(auto, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := psql(t, b.ConnectionURI, "SELECT count(*) FROM items"); code != 0 || out != "1000" {
		t.Fatalf("after fixing the config: exit %d, out %q, stderr %s", code, out, stderr)
	}
}

// The proxy carries a large COPY both ways and a long query intact, and a
// cancel request sent to the branch URL cancels a running query.
func TestProxyCopyAndCancel(t *testing.T) {
	d := startItemsDaemon(t, daemonOpts{Driver: "btrfs"})
	b := d.create(t, root, "copy")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, b.ConnectionURI)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	// ~64 MB in through COPY FROM, then out through COPY TO.
	const rows = 400_000
	var in bytes.Buffer
	for i := range rows {
		fmt.Fprintf(&in, "%d\t%s-%d\n", i, strings.Repeat("x", 150), i*7919%rows)
	}
	sent := in.Bytes()
	if _, err := conn.Exec(ctx, "CREATE TABLE big (id int, payload text)"); err != nil {
		t.Fatal(err)
	}
	tag, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(sent), "COPY big FROM STDIN")
	if err != nil {
		t.Fatalf("COPY FROM through the proxy: %v", err)
	}
	if tag.RowsAffected() != rows {
		t.Fatalf("COPY FROM: %d rows, want %d", tag.RowsAffected(), rows)
	}
	var back bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &back, "COPY (SELECT * FROM big ORDER BY id) TO STDOUT"); err != nil {
		t.Fatalf("COPY TO through the proxy: %v", err)
	}
	if !bytes.Equal(back.Bytes(), sent) {
		t.Fatalf("COPY round trip differs: sent %d bytes, got %d", len(sent), back.Len())
	}
	var sum string
	if err := conn.QueryRow(ctx, "SELECT md5(string_agg(payload, ',' ORDER BY id)) FROM big").Scan(&sum); err != nil {
		t.Fatal(err)
	}

	// A long query through the proxy finishes.
	began := time.Now()
	if _, err := conn.Exec(ctx, "SELECT pg_sleep(3)"); err != nil {
		t.Fatalf("long query: %v", err)
	}
	if took := time.Since(began); took < 3*time.Second || took > 30*time.Second {
		t.Fatalf("pg_sleep(3) took %s", took)
	}

	// A cancel request (what psql sends on ^C) to the branch's host:port.
	go func() {
		time.Sleep(time.Second)
		if err := conn.PgConn().CancelRequest(ctx); err != nil {
			t.Errorf("cancel request: %v", err)
		}
	}()
	began = time.Now()
	_, err = conn.Exec(ctx, "SELECT pg_sleep(60)")
	if err == nil || !strings.Contains(err.Error(), "57014") {
		t.Fatalf("cancel request through the URL: got %v, want SQLSTATE 57014", err)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Fatalf("cancel took effect only after %s", took)
	}
	// pg_cancel_backend from a second session through the same URL.
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(time.Second)
		c2, err := pgx.Connect(ctx, b.ConnectionURI)
		if err != nil {
			t.Errorf("second session: %v", err)
			return
		}
		defer c2.Close(context.Background())
		if _, err := c2.Exec(ctx, fmt.Sprintf("SELECT pg_cancel_backend(%d)", pid)); err != nil {
			t.Errorf("pg_cancel_backend: %v", err)
		}
	}()
	if _, err := conn.Exec(ctx, "SELECT pg_sleep(60)"); err == nil || !strings.Contains(err.Error(), "57014") {
		t.Fatalf("pg_cancel_backend through the URL: got %v, want SQLSTATE 57014", err)
	}
	var again string
	if err := conn.QueryRow(ctx, "SELECT md5(string_agg(payload, ',' ORDER BY id)) FROM big").Scan(&again); err != nil || again != sum {
		t.Fatalf("after the cancels the data reads %q (%v), want %q", again, err, sum)
	}
}

// After kill -9 of the daemon, every branch's URL answers again; a
// suspended branch stays suspended (nothing starts it but a client) and a
// running one is adopted as it runs.
func TestSuspendAfterKill9(t *testing.T) {
	d := startItemsDaemon(t, daemonOpts{Driver: "btrfs"})
	up := d.create(t, root, "k9/up")
	down := d.create(t, root, "k9/down")
	upVol, downVol := d.branchVolume(t, "k9/up"), d.branchVolume(t, "k9/down")
	d.must(root, "branches", "suspend", "k9/down")
	upPID := branchPostmasters(d)[upVol]

	for round := range 2 {
		d.kill9()
		if got := listeningPorts(t, up.Port, up.Port); len(got) != 0 {
			t.Fatalf("port %d still listens with the daemon dead", up.Port)
		}
		d.start()
		if got := d.get(t, root, "k9/down").State; got != api.StateSuspended {
			t.Fatalf("round %d: suspended branch is %s after restart", round, got)
		}
		if _, ok := branchPostmasters(d)[downVol]; ok {
			t.Fatalf("round %d: restart started the suspended branch", round)
		}
		if pid := branchPostmasters(d)[upVol]; pid != upPID {
			t.Fatalf("round %d: running branch's postmaster %d became %d; want it adopted", round, upPID, pid)
		}
		// Main listens on its unix socket only.
		if got := listeningPorts(t, d.PortLo, d.PortHi); len(got) != 2 {
			t.Fatalf("round %d: listening ports %v, want both branches'", round, got)
		}
		if n := queryInt(t, up.ConnectionURI, "SELECT count(*) FROM items"); n != 1000 {
			t.Fatalf("running branch after restart: %d rows", n)
		}
	}
	if n := queryInt(t, down.ConnectionURI, "SELECT count(*) FROM items"); n != 1000 {
		t.Fatalf("suspended branch woken after restart: %d rows", n)
	}
	if got := d.get(t, root, "k9/down").State; got != api.StateReady {
		t.Fatalf("woken branch is %s", got)
	}
}
