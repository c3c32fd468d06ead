package engine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/engine/enginetest"
)

// cowDrivers are tested on their own filesystems; copy runs on the plain disk.
var allDrivers = []string{"btrfs", "reflink", "copy"}

// driverBase is a directory on a filesystem that suits driver name.
func driverBase(t testing.TB, name string, size int64) string {
	t.Helper()
	switch name {
	case "btrfs":
		return enginetest.LoopFS(t, "btrfs", size)
	case "reflink":
		return enginetest.LoopFS(t, "xfs", size)
	default:
		return t.TempDir()
	}
}

// TestCloneUnderLoad clones an instance while pgbench writes to it, through
// a snapshot and directly, and checks each clone with pg_amcheck.
func TestCloneUnderLoad(t *testing.T) {
	for _, drv := range allDrivers {
		t.Run(drv, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, drv, driverBase(t, drv, 2<<30))
			f.init("origin")
			origin := f.start("origin")
			runTool(t, f.e, origin, "pgbench", "-i", "-q", "-s", "5", "postgres")

			bctx, stopBench := context.WithCancel(ctx)
			bench := pgTool(bctx, f.e, origin, "pgbench", "-c", "2", "-T", "600", "postgres")
			var out strings.Builder
			bench.Stdout, bench.Stderr = &out, &out
			if err := bench.Start(); err != nil {
				t.Fatalf("pgbench: %v", err)
			}
			benchDone := make(chan struct{})
			go func() { bench.Wait(); close(benchDone) }()
			defer func() { stopBench(); <-benchDone }()
			time.Sleep(2 * time.Second)

			if err := f.e.Snapshot(ctx, "origin", "snap"); err != nil {
				t.Fatalf("snapshot under load: %v", err)
			}
			// A snapshot of a running instance is settled (recovered and shut
			// down cleanly) except on copy, where it carries a backup label.
			if drv == "copy" {
				if _, err := os.Stat(filepath.Join(f.e.DataPath("snap"), "backup_label")); err != nil {
					t.Fatalf("snapshot of a running instance by copy has no backup label: %v", err)
				}
			} else {
				out, err := exec.Command(filepath.Join(f.e.BinDir(), "pg_controldata"), f.e.DataPath("snap")).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "Database cluster state:               shut down\n") {
					t.Fatalf("snapshot by %s is not settled: %v\n%s", drv, err, out)
				}
			}
			if err := f.e.Clone(ctx, "snap", "c-snap"); err != nil {
				t.Fatalf("clone of snapshot: %v", err)
			}
			if err := f.e.Clone(ctx, "origin", "c-live"); err != nil {
				t.Fatalf("clone of running volume: %v", err)
			}
			select {
			case <-benchDone:
				t.Fatalf("pgbench stopped before the copies were taken: %s", out.String())
			default:
			}
			for _, id := range []string{"c-snap", "c-live"} {
				inst := f.start(id)
				c := connect(t, inst)
				if n := queryInt(t, c, "SELECT count(*) FROM pgbench_accounts"); n != 500000 {
					t.Fatalf("%s: pgbench_accounts has %d rows, want 500000", id, n)
				}
				if n := queryInt(t, c, "SELECT count(*) FROM pgbench_history"); n == 0 {
					t.Fatalf("%s: no pgbench_history rows: the copy was not taken under load", id)
				}
				runTool(t, f.e, inst, "pg_amcheck", "--all", "--heapallindexed", "--install-missing")
			}
		})
	}
}

// TestCloneIsolation: writes in a clone are not seen by its origin or by a
// sibling clone, nor the other way round.
func TestCloneIsolation(t *testing.T) {
	for _, drv := range allDrivers {
		t.Run(drv, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, drv, driverBase(t, drv, 1<<30))
			f.init("origin")
			o := connect(t, f.start("origin"))
			exec1(t, o, "CREATE TABLE t (who text)")
			exec1(t, o, "INSERT INTO t VALUES ('origin-before')")
			if err := f.e.Snapshot(ctx, "origin", "snap"); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"a", "b"} {
				if err := f.e.Clone(ctx, "snap", id); err != nil {
					t.Fatal(err)
				}
			}
			a := connect(t, f.start("a"))
			b := connect(t, f.start("b"))
			exec1(t, a, "INSERT INTO t VALUES ('a')")
			exec1(t, b, "INSERT INTO t VALUES ('b')")
			exec1(t, o, "INSERT INTO t VALUES ('origin-after')")
			want := map[string]string{"origin": "origin-after,origin-before", "a": "a,origin-before", "b": "b,origin-before"}
			for name, c := range map[string]*pgx.Conn{"origin": o, "a": a, "b": b} {
				var got string
				if err := c.QueryRow(ctx, "SELECT string_agg(who, ',' ORDER BY who) FROM t").Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want[name] {
					t.Errorf("%s sees %q, want %q", name, got, want[name])
				}
			}
			for _, id := range []string{"origin", "snap", "a"} {
				u, err := f.e.Usage(ctx, id)
				// A qgroup's exclusive bytes count metadata and whole extents
				// of which a file now uses a part (btrfs keeps an overwritten
				// extent until no byte of it is referenced), so on a busy
				// instance they can pass the apparent size; du's cannot.
				over := u.ExclusiveBytes > u.TotalBytes && u.Method != "qgroup"
				if err != nil || u.TotalBytes <= 0 || u.ExclusiveBytes < 0 || over || u.Method == "" {
					t.Errorf("usage of %s: %+v, %v", id, u, err)
				}
			}
		})
	}
}
