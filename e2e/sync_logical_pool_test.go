package e2e

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/twin/api"
)

// TestSyncLogicalPool, one logical-mode daemon on a small pool:
//   - the lag gauges follow a real write burst: pgtwin_sync_lag_bytes rises
//     above zero while main is behind and comes back to zero after;
//   - a resync that runs the pool out of space fails saying the disk is
//     full (as a dump sync does), leaves main as it was, and a resync once
//     there is room follows again.
func TestSyncLogicalPool(t *testing.T) {
	src := startShopOpts(t, 500, pgtest.Options{Logical: true})
	// ticks takes the burst; events makes a rebuild need room (about
	// 60 MB of rows; the fill writes next to no WAL for them, wal_level
	// being minimal while it runs).
	src.Exec(t, "shop", `CREATE TABLE ticks (id bigserial PRIMARY KEY, n int NOT NULL);
		CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, payload text NOT NULL);
		INSERT INTO events SELECT i, 'k' || (i % 7), translate(repeat(md5(i::text), 8), '0123456789', 'ghijklmnop')
		FROM generate_series(1, 200000) i;
		ANALYZE events`)
	d := startSyncDaemon(t, src, syncOpts{mode: "logical", image: 768 << 20, metrics: true})
	d.waitStreaming(t, 3*time.Minute)

	// 1. A write burst: the lag rises above zero, then drains to zero.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := connect(t, src.ConnString("shop"))
		if err != nil {
			t.Errorf("burst: %v", err)
			return
		}
		defer conn.Close(context.Background())
		// About 20,000 rows a second: main trails the source by a commit
		// or two at any moment, without filling the pool.
		for ctx.Err() == nil {
			if _, err := conn.Exec(ctx, "INSERT INTO ticks (n) SELECT g FROM generate_series(1, 1000) g"); err != nil && ctx.Err() == nil {
				t.Errorf("burst: %v", err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	var peak float64
	eventually(t, 2*time.Minute, "pgtwin_sync_lag_bytes rises above zero during the burst", func() bool {
		peak = lagGauge(t, d)
		return peak > 0
	})
	stop()
	wg.Wait()
	t.Logf("lag during the burst: %.0f bytes", peak)
	eventually(t, 2*time.Minute, "pgtwin_sync_lag_bytes returns to zero after the burst", func() bool {
		return lagGauge(t, d) == 0
	})
	ticks := queryInt(t, src.ConnString("shop"), "SELECT count(*) FROM ticks")
	if n := d.mainQueryInt(t, "SELECT count(*) FROM ticks"); n != ticks {
		t.Fatalf("main has %d ticks once the lag is zero, the source %d", n, ticks)
	}

	// 2. A resync on a pool too full for a second copy.
	volumes := filepath.Join(d.DataDir, "volumes")
	filler := filepath.Join(volumes, ".filler") // not a volume: the driver lists directories only
	fillPool(t, volumes, filler, 30<<20)
	r := d.must(root, "sync", "now", "--resync", "-o", "json")
	if st := decode[api.SyncStatus](t, r); st.State != api.SyncInitializing {
		t.Fatalf("sync now --resync answered %+v, want the resync shown as begun (initializing)", st)
	}
	var st api.SyncStatus
	eventually(t, 3*time.Minute, "the resync on a full pool ends", func() bool {
		st = d.syncStatus(t)
		return st.State != api.SyncInitializing
	})
	if st.State != api.SyncFailed || !strings.Contains(st.LastError, "no space left") {
		t.Fatalf("sync status after a resync on a full pool: want failed, saying the disk is full: %+v", st)
	}
	t.Logf("resync on a full pool: %s", st.LastError)
	if n := d.mainQueryInt(t, "SELECT count(*) FROM ticks"); n != ticks {
		t.Fatalf("main has %d ticks after the failed resync, want %d as before", n, ticks)
	}

	// With room again, a resync rebuilds main and follows.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	d.must(root, "sync", "now", "--resync")
	d.waitStreaming(t, 3*time.Minute)
	if n := d.mainQueryInt(t, "SELECT count(*) FROM events"); n != 200000 {
		t.Fatalf("main has %d events after the resync, want 200000", n)
	}
}

// lagGauge scrapes pgtwin_sync_lag_bytes.
func lagGauge(t *testing.T, d *daemon) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(d.metrics(t)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "pgtwin_sync_lag_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("pgtwin_sync_lag_bytes %q: %v", v, err)
			}
			return f
		}
	}
	t.Fatal("the metrics have no pgtwin_sync_lag_bytes")
	return 0
}

// fillPool writes path on the filesystem at dir until about leave bytes
// are free there.
func fillPool(t *testing.T, dir, path string, leave int64) {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	free := int64(fs.Bavail) * fs.Bsize
	if free <= leave {
		t.Fatalf("the pool has only %d bytes free; the test needs more than %d", free, leave)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, free-leave); err != nil {
		t.Fatalf("fill the pool: %v", err)
	}
	t.Cleanup(func() { os.Remove(path) })
}
