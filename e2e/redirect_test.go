package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/twin/api"
)

// kernelPath is true in the run that TestProxyKernelPath starts, where the
// daemon reaches running branches by nftables redirect.
func kernelPath() bool { return os.Getenv("PGTWIN_REDIRECT") == "on" }

// kernelPathTests are the branch-URL tests that run again on the kernel path.
const kernelPathTests = "^(TestSuspendIdleAndWake|TestWakeStampede|TestProxyCopyAndCancel|TestBranchURLPaths)$"

// TestProxyKernelPath runs the branch-URL tests again with the kernel
// redirect on, in a network namespace of their own so that the host's
// nftables ruleset is never touched; the run here is the user-space proxy.
func TestProxyKernelPath(t *testing.T) {
	if kernelPath() {
		t.Fatal("TestProxyKernelPath runs the kernel path itself; it must not be selected inside it")
	}
	for _, bin := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found (util-linux, iproute2): the kernel path runs in its own network namespace", bin)
		}
	}
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", `ip link set lo up && exec "$@"`, "sh",
		os.Args[0], "-test.run="+kernelPathTests, "-test.count=1", "-test.v", "-test.timeout=25m")
	cmd.Env = append(os.Environ(), "PGTWIN_REDIRECT=on")
	out, err := cmd.CombinedOutput()
	t.Logf("kernel path, in a network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("kernel path tests failed: %v", err)
	}
	for _, name := range []string{"TestSuspendIdleAndWake", "TestWakeStampede", "TestProxyCopyAndCancel", "TestBranchURLPaths"} {
		if !strings.Contains(string(out), "--- PASS: "+name) {
			t.Errorf("%s did not pass on the kernel path", name)
		}
	}
}

// checkPath asserts which path a running branch's URL takes: on the kernel
// path its postmaster listens on the internal address and the daemon's
// table redirects its port; otherwise it listens on no TCP address at all.
func checkPath(t *testing.T, port int) {
	t.Helper()
	internal := listenersOn(t, port)
	if !kernelPath() {
		if len(internal) != 1 || internal[0] != "127.0.0.1" {
			t.Fatalf("user-space path: port %d listens on %v, want the daemon on 127.0.0.1 only", port, internal)
		}
		return
	}
	if fmt.Sprint(internal) != "[127.0.0.1 127.0.0.2]" {
		t.Fatalf("kernel path: port %d listens on %v, want the daemon on 127.0.0.1 and the postmaster on 127.0.0.2", port, internal)
	}
	out, err := exec.Command("nft", "list", "set", "ip", "pgtwin", "running").CombinedOutput()
	if err != nil || !strings.Contains(string(out), strconv.Itoa(port)) {
		t.Fatalf("kernel path: nft set ip pgtwin running lacks %d: %v\n%s", port, err, out)
	}
}

// listenersOn lists the IPv4 addresses listening on port, sorted.
func listenersOn(t *testing.T, port int) []string {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || fs[3] != "0A" {
			continue
		}
		addr, portHex, _ := strings.Cut(fs[1], ":")
		p, _ := strconv.ParseInt(portHex, 16, 32)
		a, err := strconv.ParseUint(addr, 16, 32)
		if int(p) != port || err != nil {
			continue
		}
		out = append(out, fmt.Sprintf("%d.%d.%d.%d", a&0xff, a>>8&0xff, a>>16&0xff, a>>24))
	}
	sortStrings(out)
	return out
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

func withUser(t *testing.T, uri, user string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestBranchURLPaths: on whichever path the daemon uses, the bootstrap
// superuser and the scan role cannot log in through a branch URL, SSL is
// declined as before, a branch with a client connected is never
// idle-suspended, and a branch switched between running and suspended (by
// max_running) while a client connects every 10 ms loses no connection.
func TestBranchURLPaths(t *testing.T) {
	d := startItemsDaemon(t, daemonOpts{Driver: "btrfs", Branches: "idle_suspend = \"2s\"\nmax_running = 1"})
	a := d.create(t, root, "paths/a")
	volA := d.branchVolume(t, "paths/a")
	if n := queryInt(t, a.ConnectionURI, "SELECT count(*) FROM items"); n != 1000 {
		t.Fatalf("branch a: %d rows", n)
	}
	checkPath(t, a.Port)

	for _, role := range []string{"pgtwin_super", "pgtwin_scan"} {
		conn, err := connect(t, withUser(t, a.ConnectionURI, role))
		if err == nil {
			conn.Close(context.Background())
			t.Fatalf("%s logged in through the branch URL", role)
		}
		if st := sqlState(err); st != "28000" && st != "28P01" {
			t.Fatalf("%s through the branch URL: %v (SQLSTATE %q), want an authentication refusal", role, err, st)
		}
		t.Logf("%s refused: %v", role, err)
	}

	// SSL: declined, so prefer falls back to plain and require fails.
	if _, stderr, code := psql(t, strings.Replace(a.ConnectionURI, "sslmode=disable", "sslmode=require", 1)+sslParam(a.ConnectionURI, "require"), "SELECT 1"); code == 0 || !strings.Contains(stderr, "does not support SSL") {
		t.Fatalf("sslmode=require: exit %d, stderr %q; want libpq's \"server does not support SSL\"", code, stderr)
	}
	if out, stderr, code := psql(t, strings.Replace(a.ConnectionURI, "sslmode=disable", "sslmode=prefer", 1)+sslParam(a.ConnectionURI, "prefer"), "SELECT 1"); code != 0 || out != "1" {
		t.Fatalf("sslmode=prefer: exit %d, out %q, stderr %q", code, out, stderr)
	}

	// A connected client, idle for twice idle_suspend, keeps the branch up.
	held, err := connect(t, a.ConnectionURI)
	if err != nil {
		t.Fatal(err)
	}
	pid := branchPostmasters(d)[volA]
	time.Sleep(5 * time.Second)
	var one int
	if err := held.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("held connection after 5s idle: %v", err)
	}
	if got := d.get(t, root, "paths/a").State; got != api.StateReady || branchPostmasters(d)[volA] != pid {
		t.Fatalf("with a client connected the branch went %s (postmaster %d -> %d)", got, pid, branchPostmasters(d)[volA])
	}
	held.Close(context.Background())
	d.waitState(t, "paths/a", api.StateSuspended, 30*time.Second)

	// Switching: a client on a connects again 10 ms after each session
	// (which, SCRAM included, lasts about as long), while b is resumed every
	// 300 ms; with max_running = 1 resuming b suspends a whenever a has no
	// client, and a's next connection suspends b.
	d.create(t, root, "paths/b")
	secs := envInt("PGTWIN_E2E_SWITCH_SECONDS", 8)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var attempts, failures atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			attempts.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			conn, err := pgx.Connect(ctx, a.ConnectionURI)
			if err == nil {
				err = conn.QueryRow(ctx, "SELECT 1").Scan(new(int))
				conn.Close(context.Background())
			}
			cancel()
			if err != nil {
				failures.Add(1)
				t.Errorf("connection attempt failed: %v", err)
			}
		}
	}()
	pids := map[int]bool{}
	resumes := 0
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for time.Now().Before(deadline) {
		if r := d.cli(root, "branches", "resume", "paths/b"); r.code == 0 {
			resumes++
		} else {
			t.Logf("resume b: %s", strings.TrimSpace(r.stderr))
		}
		for range 15 {
			if p, ok := branchPostmasters(d)[volA]; ok {
				pids[p] = true
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d connection attempts, %d failed; %d resumes of b; branch a ran as %d postmasters", attempts.Load(), failures.Load(), resumes, len(pids))
	if failures.Load() > 0 {
		t.Fatalf("%d of %d connection attempts failed while the branches switched", failures.Load(), attempts.Load())
	}
	if len(pids) < 3 {
		t.Fatalf("branch a ran as %d postmasters in %ds: it did not switch between running and suspended", len(pids), secs)
	}
}

// sslParam adds sslmode when the URI has none.
func sslParam(uri, mode string) string {
	if strings.Contains(uri, "sslmode=") {
		return ""
	}
	if strings.Contains(uri, "?") {
		return "&sslmode=" + mode
	}
	return "?sslmode=" + mode
}
