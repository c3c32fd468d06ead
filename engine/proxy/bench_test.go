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
