package engine_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/enginetest"
)

// TestBenchEngine measures, per driver, the time from "clone this snapshot"
// to "a query returns" (clone + start + connect + SELECT 1) at about 1 GB
// and 4 GB of pgbench data. It is a benchmark, not a test: run it with
//
//	PGTWIN_BENCH=1 go test ./engine -run TestBenchEngine -v -timeout 60m
//
// PGTWIN_BENCH_SCALES (default "68,270") and PGTWIN_BENCH_RUNS (default 5;
// copy gets at least 3) change the work.
func TestBenchEngine(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") == "" {
		t.Skip("benchmark: set PGTWIN_BENCH=1 to run it (takes about half an hour)")
	}
	ctx := context.Background()
	scales := []int{68, 270}
	if s := os.Getenv("PGTWIN_BENCH_SCALES"); s != "" {
		scales = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("PGTWIN_BENCH_SCALES: %v", err)
			}
			scales = append(scales, n)
		}
	}
	runs := 5
	if s := os.Getenv("PGTWIN_BENCH_RUNS"); s != "" {
		runs, _ = strconv.Atoi(s)
	}
	type setup struct{ drv, fs string }
	setups := []setup{{"btrfs", "btrfs"}, {"reflink", "xfs"}, {"copy", "xfs"}}
	fixtures := map[string]*fixture{}
	for _, s := range setups {
		fixtures[s.drv] = newFixture(t, s.drv, enginetest.LoopFS(t, s.fs, 40<<30))
	}

	type result struct {
		size               int64
		total, clone, strt []time.Duration
	}
	results := map[string]map[int]*result{}
	for _, scale := range scales {
		seed := buildSeed(t, scale)
		for _, s := range setups {
			f := fixtures[s.drv]
			origin := fmt.Sprintf("origin-%d", scale)
			f.init(origin)
			t0 := time.Now()
			if err := os.RemoveAll(f.e.DataPath(origin)); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("cp", "-a", "--sparse=always", seed, f.e.DataPath(origin)).CombinedOutput()
			if err != nil {
				t.Fatalf("copy seed: %v: %s", err, out)
			}
			unix.Sync()
			t.Logf("%s: seed copied in %s", s.drv, time.Since(t0).Round(time.Millisecond))
			inst := f.start(origin)
			c := connect(t, inst)
			var size int64
			if err := c.QueryRow(ctx, "SELECT sum(pg_database_size(oid))::bigint FROM pg_database").Scan(&size); err != nil {
				t.Fatal(err)
			}
			exec1(t, c, "CHECKPOINT")
			c.Close(ctx)
			snap := fmt.Sprintf("snap-%d", scale)
			t0 = time.Now()
			if err := f.e.Snapshot(ctx, origin, snap); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: snapshot of running %s (%d MB) in %s", s.drv, origin, size>>20, time.Since(t0).Round(time.Millisecond))
			r := &result{size: size}
			n := runs
			if s.drv == "copy" {
				n = max(3, min(runs, 3))
			}
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("b-%d-%d", scale, i)
				port, err := f.e.AllocatePort(f.ports)
				if err != nil {
					t.Fatal(err)
				}
				// Start each run from a quiet disk: writeback left by the
				// previous run (or the seed copy) is not this run's cost.
				unix.Sync()
				start := time.Now()
				if err := f.e.Clone(ctx, snap, id); err != nil {
					t.Fatal(err)
				}
				cloned := time.Now()
				bi, err := f.e.Start(ctx, id, engine.InstanceSpec{Port: port, Settings: map[string]string{"shared_buffers": "32MB"}})
				if err != nil {
					t.Fatal(err)
				}
				bc, err := pgx.Connect(ctx, bi.ConnString(bi.Superuser, "postgres"))
				if err != nil {
					t.Fatal(err)
				}
				var one int
				if err := bc.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
					t.Fatal(err)
				}
				done := time.Now()
				bc.Close(ctx)
				r.total = append(r.total, done.Sub(start))
				r.clone = append(r.clone, cloned.Sub(start))
				r.strt = append(r.strt, done.Sub(cloned))
				t.Logf("%s scale %d run %d: %s (clone %s, start+query %s)", s.drv, scale, i, done.Sub(start).Round(time.Millisecond),
					cloned.Sub(start).Round(time.Millisecond), done.Sub(cloned).Round(time.Millisecond))
				if err := f.e.Destroy(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if results[s.drv] == nil {
				results[s.drv] = map[int]*result{}
			}
			results[s.drv][scale] = r
			for _, v := range []string{snap, origin} {
				if err := f.e.Destroy(ctx, v); err != nil {
					t.Fatal(err)
				}
			}
		}
		os.RemoveAll(filepath.Dir(seed))
	}

	var b strings.Builder
	var load [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &load[0], &load[1], &load[2])
	}
	fmt.Fprintf(&b, "clone-to-query (clone + start + connect + SELECT 1), median of N runs, PostgreSQL %s, %d CPUs, load average at end %.1f %.1f %.1f\n",
		fixtures["btrfs"].e.Version(), runtime.NumCPU(), load[0], load[1], load[2])
	fmt.Fprintf(&b, "%-8s %6s %9s %3s %10s %10s %10s\n", "driver", "scale", "data", "N", "median", "clone", "start+q")
	for _, s := range setups {
		for _, scale := range scales {
			r := results[s.drv][scale]
			fmt.Fprintf(&b, "%-8s %6d %7dMB %3d %10s %10s %10s\n", s.drv, scale, r.size>>20, len(r.total),
				median(r.total).Round(time.Millisecond), median(r.clone).Round(time.Millisecond), median(r.strt).Round(time.Millisecond))
		}
	}
	if len(scales) == 2 {
		fmt.Fprintf(&b, "ratio scale %d / scale %d (median clone-to-query):\n", scales[1], scales[0])
		for _, s := range setups {
			lo, hi := median(results[s.drv][scales[0]].total), median(results[s.drv][scales[1]].total)
			fmt.Fprintf(&b, "  %-8s %.2f\n", s.drv, float64(hi)/float64(lo))
		}
	}
	fmt.Print(b.String())
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// buildSeed makes a stopped PostgreSQL data directory with pgbench data at
// scale on the plain disk, to be copied onto each driver's filesystem.
func buildSeed(t *testing.T, scale int) string {
	t.Helper()
	ctx := context.Background()
	base, err := os.MkdirTemp("/var/tmp", "pgtwin-bench-seed-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	f := newFixture(t, "copy", base)
	f.init("seed")
	port, _ := f.e.AllocatePort(f.ports)
	// The seed only has to exist: load it as fast as the machine allows.
	inst, err := f.e.Start(ctx, "seed", engine.InstanceSpec{Port: port, Settings: map[string]string{
		"wal_level": "minimal", "max_wal_senders": "0", "fsync": "off", "synchronous_commit": "off",
		"maintenance_work_mem": "512MB", "max_wal_size": "8GB", "checkpoint_timeout": "1h"}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	runTool(t, f.e, inst, "pgbench", "-i", "-q", "-s", strconv.Itoa(scale), "postgres")
	t.Logf("seed: pgbench -i -s %d in %s", scale, time.Since(t0).Round(time.Second))
	if err := f.e.Stop(ctx, "seed"); err != nil {
		t.Fatal(err)
	}
	exec.Command("sync").Run()
	return f.e.DataPath("seed")
}
