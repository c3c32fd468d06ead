package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/twin/api"
)

// TestBenchSuspend is issue 7's benchmark (PGTWIN_BENCH=1), through the real
// daemon: wake latency (TCP connect to the first query's result) on a
// suspended vs a running branch; pgbench -S through the branch URL vs on the
// instance's unix socket; memory of the daemon and all postgres processes
// with PGTWIN_SCALE_BRANCHES (300) branches of which 20 were used last.
func TestBenchSuspend(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1 to run it (make bench)")
	}
	trials := envInt("PGTWIN_BENCH_WAKES", 20)
	secs := strconv.Itoa(envInt("PGTWIN_BENCH_SECONDS", 15))
	n := envInt("PGTWIN_SCALE_BRANCHES", 300)
	d := startItemsDaemon(t, daemonOpts{
		Driver: scaleDriver(), ImageSize: 16 << 30, Ports: n + 100,
		Branches: fmt.Sprintf("max_running = %d\nmax_branches = %d\n", scaleCap, n+10),
		Settings: map[string]string{"wal_init_zero": "off", "max_wal_size": "64MB", "min_wal_size": "32MB"},
	})
	var report strings.Builder
	fmt.Fprintf(&report, "\npgtwin suspend/wake (driver %s, PostgreSQL 15, %d CPUs)\n", scaleDriver(), runtimeCPUs())

	// Wake latency.
	b := d.create(t, root, "bench/wake")
	firstQuery := func() time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		began := time.Now()
		conn, err := pgx.Connect(ctx, b.ConnectionURI)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		conn.Close(context.Background())
		return took
	}
	var cold, warm []time.Duration
	for range trials {
		d.must(root, "branches", "suspend", "bench/wake")
		cold = append(cold, firstQuery())
		warm = append(warm, firstQuery())
	}
	fmt.Fprintf(&report, "wake latency, TCP connect to first result (%d trials): suspended median %s p95 %s; running median %s p95 %s\n",
		trials, median(cold).Round(time.Millisecond), p95(cold).Round(time.Millisecond),
		median(warm).Round(100*time.Microsecond), p95(warm).Round(100*time.Microsecond))

	// Proxy overhead: pgbench -S through the URL vs on the unix socket, with
	// the branch's own role and password both ways.
	u, err := url.Parse(b.ConnectionURI)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	user, db := u.User.Username(), strings.TrimPrefix(u.Path, "/")
	sockDir := filepath.Join(d.DataDir, "run", d.branchVolume(t, "bench/wake"))
	port := strconv.Itoa(b.Port)
	env := append(os.Environ(), "PGPASSWORD="+pw)
	bench := func(args ...string) string {
		cmd := exec.Command(filepath.Join(pgtest.BinDir(), "pgbench"), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pgbench %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	bench("-i", "-q", "-s", "10", "-h", "127.0.0.1", "-p", port, "-U", user, db)
	tps := func(host string) float64 {
		out := bench("-S", "-c", "4", "-j", "2", "-T", secs, "-n", "-h", host, "-p", port, "-U", user, db)
		m := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("pgbench printed no tps:\n%s", out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	direct1 := tps(sockDir)
	proxied1 := tps("127.0.0.1")
	direct2 := tps(sockDir)
	proxied2 := tps("127.0.0.1")
	direct, proxied := (direct1+direct2)/2, (proxied1+proxied2)/2
	fmt.Fprintf(&report, "pgbench -S -c 4 -j 2 -T %s, scale 10: unix socket %.0f tps, branch URL (proxy) %.0f tps, ratio %.3f (runs: %.0f/%.0f, %.0f/%.0f)\n",
		secs, direct, proxied, proxied/direct, direct1, proxied1, direct2, proxied2)
	d.must(root, "branches", "delete", "bench/wake")

	// Memory with n branches, the last 20 used.
	began := time.Now()
	uris := make([]string, n)
	parallel(4, n, func(i int) {
		r := d.cli(root, "branches", "create", fmt.Sprintf("bench/m%03d", i), "-o", "json")
		var br api.Branch
		if r.code == 0 && jsonUnmarshal(r.stdout, &br) == nil {
			uris[i] = br.ConnectionURI
		}
	})
	for i := range n {
		if uris[i] == "" {
			t.Fatalf("create bench/m%03d failed", i)
		}
	}
	created := time.Since(began)
	for i := n - scaleCap; i < n; i++ {
		if err := countItems(uris[i]); err != nil {
			t.Fatal(err)
		}
	}
	st := d.status(t)
	daemonRSS := rssOf(d.cmd.Process.Pid)
	var pgRSS, pgPSS int64
	pms := postgresWithData(d.DataDir)
	for _, p := range pms {
		pgRSS += rssOf(p.pid)
		pgPSS += pssOf(p.pid)
	}
	fmt.Fprintf(&report, "%d branches (created in %s), %d running (status: %d running, %d suspended):\n", n, created.Round(time.Second),
		len(branchPostmasters(d)), st.Running, st.Suspended)
	fmt.Fprintf(&report, "  daemon RSS %s; postgres processes (main + branches): %d, RSS %s, PSS %s; status branch_memory %s\n",
		humanMB(daemonRSS), len(pms), humanMB(pgRSS), humanMB(pgPSS), humanMB(st.BranchMemory))
	fmt.Fprintf(&report, "  total (daemon RSS + postgres PSS) %s\n", humanMB(daemonRSS+pgPSS))
	t.Log(report.String())
	fmt.Print(report.String())
}

func p95(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*95 + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func rssOf(pid int) int64 { return procKB(pid, "status", "VmRSS:") }
func pssOf(pid int) int64 { return procKB(pid, "smaps_rollup", "Pss:") }

func procKB(pid int, file, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

func runtimeCPUs() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
