package proxy_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/engine/proxy"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

func benchGate(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1")
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

var (
	tpsRe = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	txRe  = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// lastTx is the transaction count of the last pgbench run.
var lastTx int64

func pgbench(t *testing.T, args ...string) float64 {
	t.Helper()
	cmd := exec.Command(filepath.Join(pgtest.BinDir(), "pgbench"), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench %v: %v\n%s", args, err, out)
	}
	m := tpsRe.FindSubmatch(out)
	if m == nil {
		t.Fatalf("pgbench printed no tps:\n%s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	if m := txRe.FindSubmatch(out); m != nil {
		lastTx, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	return tps
}

// TestBenchProxyThroughput compares pgbench -S through the proxy with the
// same run straight on the instance's unix socket (and its TCP port).
func TestBenchProxyThroughput(t *testing.T) {
	benchGate(t)
	b := newBackend(t)
	if _, err := b.Wake(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, b, proxy.Options{})
	secs := strconv.Itoa(envInt("PGTWIN_BENCH_SECONDS", 15))
	port := strconv.Itoa(b.c.Port)

	out, err := exec.Command(filepath.Join(pgtest.BinDir(), "pgbench"), "-i", "-q", "-s", "10",
		"-h", b.c.Dir, "-p", port, "-U", appRole, appRole).CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	run := func(host, port string) float64 {
		return pgbench(t, "-S", "-c", "4", "-j", "2", "-T", secs, "-n", "-h", host, "-p", port, "-U", appRole, appRole)
	}
	// Other work on the host skews single runs; rounds alternate the modes
	// and the median of each is reported.
	rounds := envInt("PGTWIN_BENCH_ROUNDS", 1)
	var unix, viaProxy, tcp, plain, cpuSplice, cpuPlain []float64
	// The test process runs nothing but the proxy during a pgbench run, so
	// its CPU time per transaction is the proxy's cost, whatever the load.
	viaProxyCPU := func(tps *[]float64, cpu *[]float64) {
		before := cpuTime()
		*tps = append(*tps, run("127.0.0.1", proxyPort(p)))
		*cpu = append(*cpu, float64((cpuTime()-before).Microseconds())/float64(lastTx))
	}
	for range rounds {
		unix = append(unix, run(b.c.Dir, port))
		viaProxyCPU(&viaProxy, &cpuSplice)
		tcp = append(tcp, run("127.0.0.1", port))
		proxy.SetPlainCopy(true)
		viaProxyCPU(&plain, &cpuPlain)
		proxy.SetPlainCopy(false)
	}
	fmt.Printf("pgbench -S -c 4 -j 2 -T %s (scale 10), median of %d round(s)\n", secs, rounds)
	fmt.Printf("  unix socket direct: %10.0f tps %v\n", median(unix), unix)
	fmt.Printf("  tcp direct:         %10.0f tps %v\n", median(tcp), tcp)
	fmt.Printf("  through proxy:      %10.0f tps %v\n", median(viaProxy), viaProxy)
	fmt.Printf("  proxy, no splice:   %10.0f tps %v\n", median(plain), plain)
	fmt.Printf("  proxy CPU per transaction: %.1f µs with splice, %.1f µs without\n", median(cpuSplice), median(cpuPlain))
	fmt.Printf("  proxy / unix = %.3f (target >= 0.9); proxy / tcp = %.3f\n",
		median(viaProxy)/median(unix), median(viaProxy)/median(tcp))
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestBenchWakeLatency times TCP connect to first query result through the
// proxy, with the instance stopped (the connection starts it) and running.
func TestBenchWakeLatency(t *testing.T) {
	benchGate(t)
	b := newBackend(t)
	p := startProxy(t, b, proxy.Options{})
	trials := envInt("PGTWIN_BENCH_WAKE_TRIALS", 20)
	url := proxyURL(p, appRole, "disable")

	once := func() time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		begin := time.Now()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("query: %v", err)
		}
		d := time.Since(begin)
		conn.Close(ctx)
		return d
	}
	var stopped, running []time.Duration
	for range trials {
		b.stop()
		stopped = append(stopped, once())
		running = append(running, once())
	}
	fmt.Printf("connect to first result through the proxy, %d trials\n", trials)
	fmt.Printf("  stopped (wakes): median %v  p95 %v\n", pct(stopped, 50), pct(stopped, 95))
	fmt.Printf("  running:         median %v  p95 %v\n", pct(running, 50), pct(running, 95))
	if int(b.starts.Load()) != trials {
		t.Fatalf("%d starts for %d wakes", b.starts.Load(), trials)
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)].Round(100 * time.Microsecond)
}
