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
)

// TestBenchBranchURL (PGTWIN_BENCH=1) measures a branch URL through the real
// daemon on the user-space proxy and then, in a network namespace of its
// own, on the kernel path: wake latency (TCP connect to the first query's
// result) of a suspended branch, and pgbench -S and -N at -c1 and -c4
// through the URL, on the instance's unix socket and (kernel path) on its
// internal TCP listener, in interleaved rounds.
func TestBenchBranchURL(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1 to run it")
	}
	benchBranchURL(t)
	if kernelPath() {
		return
	}
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", `ip link set lo up && exec "$@"`, "sh",
		os.Args[0], "-test.run=^TestBenchBranchURL$", "-test.count=1", "-test.v", "-test.timeout=1h")
	cmd.Env = append(os.Environ(), "PGTWIN_REDIRECT=on")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kernel path run: %v", err)
	}
}

func benchBranchURL(t *testing.T) {
	path := "user-space proxy"
	if kernelPath() {
		path = "kernel redirect"
	}
	d := startItemsDaemon(t, daemonOpts{Driver: "btrfs",
		Settings: map[string]string{"wal_init_zero": "off", "max_wal_size": "256MB", "max_connections": "20"}})
	b := d.create(t, root, "bench/url")
	checkPath(t, b.Port)

	trials := envInt("PGTWIN_BENCH_WAKES", 20)
	firstQuery := func() time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		began := time.Now()
		conn, err := pgx.Connect(ctx, b.ConnectionURI)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(new(int)); err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		conn.Close(context.Background())
		return took
	}
	var cold, warm []time.Duration
	for range trials {
		d.must(root, "branches", "suspend", "bench/url")
		cold = append(cold, firstQuery())
		warm = append(warm, firstQuery())
	}
	fmt.Printf("%s: wake latency, TCP connect to first result (%d trials): suspended median %s p95 %s; running median %s p95 %s\n",
		path, trials, median(cold).Round(time.Millisecond), p95(cold).Round(time.Millisecond),
		median(warm).Round(100*time.Microsecond), p95(warm).Round(100*time.Microsecond))

	u, err := url.Parse(b.ConnectionURI)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	user, db := u.User.Username(), strings.TrimPrefix(u.Path, "/")
	port := strconv.Itoa(b.Port)
	env := append(os.Environ(), "PGPASSWORD="+pw)
	tpsRe := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	txRe := regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
	var lastTx float64
	bench := func(args ...string) float64 {
		cmd := exec.Command(filepath.Join(pgtest.BinDir(), "pgbench"), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pgbench %v: %v\n%s", args, err, out)
		}
		if m := txRe.FindSubmatch(out); m != nil {
			lastTx, _ = strconv.ParseFloat(string(m[1]), 64)
		}
		if m := tpsRe.FindSubmatch(out); m != nil {
			v, _ := strconv.ParseFloat(string(m[1]), 64)
			return v
		}
		return 0
	}
	bench("-i", "-q", "-s", "10", "-h", "127.0.0.1", "-p", port, "-U", user, db)
	hosts := []struct{ name, host string }{
		{"unix socket", filepath.Join(d.DataDir, "run", d.branchVolume(t, "bench/url"))},
		{"branch URL", "127.0.0.1"},
	}
	if kernelPath() {
		hosts = append(hosts, struct{ name, host string }{"tcp direct", "127.0.0.2"})
	}
	secs := strconv.Itoa(envInt("PGTWIN_BENCH_SECONDS", 10))
	loads := [][]string{{"-S", "-c", "1"}, {"-S", "-c", "4", "-j", "2"}, {"-N", "-c", "1"}, {"-N", "-c", "4", "-j", "2"}}
	rounds := envInt("PGTWIN_BENCH_ROUNDS", 3)
	res := map[[2]int][]float64{}
	// The daemon's CPU per transaction through the URL: the proxy's cost on
	// the user-space path, next to nothing on the kernel path.
	daemonCPU := map[int][]float64{}
	load0 := loadAvg1()
	for range rounds {
		for li, l := range loads {
			for hi, h := range hosts {
				args := append(slices.Clone(l), "-T", secs, "-n", "-h", h.host, "-p", port, "-U", user, db)
				before := procCPU(t, d.cmd.Process.Pid)
				res[[2]int{li, hi}] = append(res[[2]int{li, hi}], bench(args...))
				if hi == 1 && lastTx > 0 {
					daemonCPU[li] = append(daemonCPU[li], float64((procCPU(t, d.cmd.Process.Pid)-before).Microseconds())/lastTx)
				}
			}
		}
	}
	fmt.Printf("%s: load average (1 min) %s at the start of the pgbench rounds, %s at the end\n", path, load0, loadAvg1())
	for li, l := range loads {
		line := fmt.Sprintf("%s: pgbench %s -T %s, %d rounds:", path, strings.Join(l, " "), secs, rounds)
		for hi, h := range hosts {
			line += fmt.Sprintf(" %s %.0f tps %s;", h.name, medianF(res[[2]int{li, hi}]), fmtF(res[[2]int{li, hi}]))
		}
		den := 0 // the unix socket; on the kernel path, the direct TCP connection
		if kernelPath() {
			den = 2
		}
		var r []float64
		for k := range rounds {
			r = append(r, res[[2]int{li, 1}][k]/res[[2]int{li, den}][k])
		}
		line += fmt.Sprintf(" URL / %s median of rounds %.3f %s; daemon CPU %.1f µs/tx", hosts[den].name, medianF(r), fmtR(r), medianF(daemonCPU[li]))
		fmt.Println(line)
	}
}

func medianF(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtF(xs []float64) string {
	var p []string
	for _, x := range xs {
		p = append(p, fmt.Sprintf("%.0f", x))
	}
	return "[" + strings.Join(p, " ") + "]"
}

func fmtR(xs []float64) string {
	var p []string
	for _, x := range xs {
		p = append(p, fmt.Sprintf("%.3f", x))
	}
	return "[" + strings.Join(p, " ") + "]"
}

// loadAvg1 is the 1-minute load average.
func loadAvg1() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// procCPU is utime+stime of a process, from /proc/PID/stat (in clock
// ticks, 100 per second).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
