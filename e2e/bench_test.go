package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// TestBenchBranches is issue 3's benchmark, run by `make bench` (set
// PGTWIN_BENCH=1): with a ~1 GB main, the median wall time of `pgtwin
// branches create` and `pgtwin branches reset` from the CLI call to its
// return, on btrfs and on reflink (XFS); then the disk 50 branches use.
func TestBenchBranches(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1 to run it (make bench)")
	}
	scale := envInt("PGTWIN_BENCH_SCALE", 68) // pgbench scale 68 is about 1 GB
	runs := envInt("PGTWIN_BENCH_RUNS", 10)
	many := envInt("PGTWIN_BENCH_BRANCHES", 50)

	type row struct {
		driver              string
		mainBytes, dbBytes  int64
		create, reset       time.Duration
		createMax, resetMax time.Duration
		dfDelta, changedSum int64
	}
	var rows []row
	for _, drv := range []string{"btrfs", "reflink"} {
		t.Run(drv, func(t *testing.T) {
			d := startDaemon(t, daemonOpts{Driver: drv, ImageSize: 12 << 30})
			fillMain(t, d, scale)
			d.snapshot(t)
			st := d.status(t)
			r := row{driver: drv, mainBytes: st.Main.SizeBytes, dbBytes: d.mainQueryInt(t, "SELECT pg_database_size(current_database())")}
			if r.mainBytes == 0 {
				r.mainBytes = dirSize(t, d.mainDataDir(t))
			}

			var creates, resets []time.Duration
			for i := 0; i < runs; i++ {
				began := time.Now()
				d.must(root, "branches", "create", fmt.Sprintf("bench/c%d", i))
				creates = append(creates, time.Since(began))
			}
			for i := 0; i < runs; i++ {
				began := time.Now()
				d.must(root, "branches", "reset", "bench/c0")
				resets = append(resets, time.Since(began))
			}
			r.create, r.createMax = median(creates), slices.Max(creates)
			r.reset, r.resetMax = median(resets), slices.Max(resets)
			t.Logf("%s create: %v", drv, creates)
			t.Logf("%s reset: %v", drv, resets)
			for i := 0; i < runs; i++ {
				d.must(root, "branches", "delete", fmt.Sprintf("bench/c%d", i))
			}

			syncFS(d.DataDir)
			before := usedBytes(t, d.DataDir)
			for i := 0; i < many; i++ {
				d.must(root, "branches", "create", fmt.Sprintf("bench/n%d", i))
			}
			// Let checkpoints of the fresh instances land before measuring.
			time.Sleep(5 * time.Second)
			syncFS(d.DataDir)
			r.dfDelta = usedBytes(t, d.DataDir) - before
			for _, b := range d.list(t, root) {
				r.changedSum += b.ChangedBytes
			}
			rows = append(rows, r)
		})
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "\npgtwin branches: pgbench scale %d in main, %d runs each, then %d branches for disk use\n", scale, runs, many)
	fmt.Fprintf(&sb, "(main = main's data directory incl. WAL; db = pg_database_size; disk = df delta; changed = sum of changed_bytes)\n")
	fmt.Fprintf(&sb, "%-8s %9s %9s %11s %11s %10s %10s %11s %9s %9s %12s\n", "driver", "main", "db", "create p50", "create max",
		"reset p50", "reset max", "disk (50)", "disk/main", "disk/db", "changed/main")
	for _, r := range rows {
		fmt.Fprintf(&sb, "%-8s %9s %9s %11s %11s %10s %10s %11s %8.2f%% %8.2f%% %11.2f%%\n", r.driver,
			humanMB(r.mainBytes), humanMB(r.dbBytes),
			r.create.Round(time.Millisecond), r.createMax.Round(time.Millisecond),
			r.reset.Round(time.Millisecond), r.resetMax.Round(time.Millisecond),
			humanMB(r.dfDelta), 100*float64(r.dfDelta)/float64(r.mainBytes), 100*float64(r.dfDelta)/float64(r.dbBytes),
			100*float64(r.changedSum)/float64(r.mainBytes))
	}
	t.Log(sb.String())
	fmt.Println(sb.String())
}

func humanMB(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/(1<<20)) }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fillMain loads pgbench data into main through its unix socket, as the
// role that owns what the sync restores.
func fillMain(t *testing.T, d *daemon, scale int) {
	t.Helper()
	bin := pgtest.BinDir()
	if bin == "" {
		t.Fatal("pgbench not found (apt-get install postgresql-contrib)")
	}
	cs := d.mainConnString(t)
	began := time.Now()
	cmd := exec.Command(filepath.Join(bin, "pgbench"), "-i", "-q", "-s", fmt.Sprint(scale), cs)
	cmd.Env = append(os.Environ(), "PGOPTIONS=-c role=pgtwin_owner")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i -s %d on main: %v\n%s", scale, err, out)
	}
	t.Logf("pgbench -i -s %d on main took %s", scale, time.Since(began).Round(time.Second))
	d.mainExec(t, "RESET ROLE; CHECKPOINT")
}

func (d *daemon) mainDataDir(t *testing.T) string {
	t.Helper()
	st := d.status(t)
	for _, p := range postmasters(d.DataDir) {
		b, err := os.ReadFile(filepath.Join(p.pgdata, "postmaster.pid"))
		if err == nil && strings.Contains(string(b), fmt.Sprintf("\n%d\n", st.Main.Port)) {
			return p.pgdata
		}
	}
	t.Fatalf("main's data directory not found")
	return ""
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func usedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(s.Blocks-s.Bfree) * int64(s.Bsize)
}

func syncFS(dir string) {
	if f, err := os.Open(dir); err == nil {
		unix.Syncfs(int(f.Fd()))
		f.Close()
	}
}
