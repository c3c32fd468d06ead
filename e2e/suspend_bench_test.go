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
	// Alternate the two, pairwise: the machine's load drifts between runs.
	var ratios []float64
	var pairs []string
	for range envInt("PGTWIN_BENCH_ROUNDS", 3) {
		direct := tps(sockDir)
		proxied := tps("127.0.0.1")
		ratios = append(ratios, proxied/direct)
		pairs = append(pairs, fmt.Sprintf("%.0f/%.0f=%.3f", proxied, direct, proxied/direct))
	}
	slices.Sort(ratios)
	fmt.Fprintf(&report, "pgbench -S -c 4 -j 2 -T %s, scale 10, branch URL (proxy) / unix socket tps: median ratio %.3f (pairs proxy/unix: %s)\n",
		secs, ratios[len(ratios)/2], strings.Join(pairs, ", "))
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
	// Every postgres process (postmasters and their children) keeps its
	// data directory under data_dir as its working directory.
	var pgRSS, pgPSS int64
	var pms []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && strings.HasPrefix(cwd, d.DataDir+"/") {
			pms = append(pms, pid)
			pgRSS += rssOf(pid)
			pgPSS += pssOf(pid)
		}
	}
	fmt.Fprintf(&report, "%d branches (created in %s), %d running (status: %d running, %d suspended):\n", n, created.Round(time.Second),
		len(branchPostmasters(d)), st.Running, st.Suspended)
	fmt.Fprintf(&report, "  daemon RSS %s; postgres processes (main + branches, all children): %d, RSS sum %s, PSS sum %s; status branch_memory (PSS, branches only) %s\n",
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
