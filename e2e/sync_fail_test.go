package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/twin/api"
)

// twinState is what a failed sync must leave exactly as it was.
type twinState struct {
	Main      api.MainStatus
	Snapshots []string
	Branches  []string
	Volumes   []string
}

func (d *daemon) twinState(t *testing.T) twinState {
	t.Helper()
	st := d.status(t)
	st.Main.SizeBytes = 0 // changes as postgres writes (checkpoints, stats)
	var s twinState
	s.Main = st.Main
	for _, sn := range decode[[]api.Snapshot](t, d.must(root, "snapshots", "list", "-o", "json")) {
		s.Snapshots = append(s.Snapshots, sn.ID)
	}
	for _, b := range d.list(t, root) {
		s.Branches = append(s.Branches, b.Name+"@"+b.Snapshot+":"+b.State)
	}
	des, err := os.ReadDir(filepath.Join(d.DataDir, "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		s.Volumes = append(s.Volumes, de.Name())
	}
	sort.Strings(s.Volumes)
	return s
}

func (d *daemon) waitSyncDone(t *testing.T, timeout time.Duration) api.SyncStatus {
	t.Helper()
	var st api.SyncStatus
	eventually(t, timeout, "the sync ends", func() bool {
		st = d.syncStatus(t)
		return st.State != "running"
	})
	return st
}

// TestSyncFailure: a sync that fails midway (the source stopped during the
// copy; the disk full) leaves main, snapshots and branches as they were,
// removes its half-built volume and says in `sync status` what failed where.
func TestSyncFailure(t *testing.T) {
	src := startShop(t, 2000)
	d := startSyncDaemon(t, src, syncOpts{image: 420 << 20, metrics: true})
	d.syncOK(t)
	b := d.create(t, root, "keep")
	const q = "SELECT count(*) FROM customers"
	before := d.twinState(t)

	// A big table with nothing personal in it: the copy takes a while, and
	// it does not fit on the pool. No digits in the payload: a run of hex
	// digits can pass the Luhn check and look like a card number.
	src.Exec(t, "shop", `CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, payload text NOT NULL);
		INSERT INTO events SELECT i, 'k' || (i % 7), translate(repeat(md5(i::text), 10), '0123456789', 'ghijklmnop')
		FROM generate_series(1, 1000000) i;
		ANALYZE events`)

	// 1. The source stops in the middle of the copy.
	if r := d.must(root, "sync", "now"); !strings.Contains(r.stdout, "running") {
		t.Fatalf("sync now: %s", r)
	}
	eventually(t, 2*time.Minute, "the sync copies rows", func() bool {
		st := d.syncStatus(t)
		if st.State != "running" {
			t.Fatalf("sync ended before the source could be stopped: %+v", st)
		}
		return st.Step == "copy" && st.Rows > 0
	})
	src.Stop()
	time.Sleep(2 * time.Second)
	src.Restart(t, false) // back, but the copy's snapshot is gone with its session
	st := d.waitSyncDone(t, 4*time.Minute)
	if st.State != "failed" || st.Step != "copy" || st.LastError == "" {
		t.Fatalf("sync status after the source stopped mid-copy: %+v", st)
	}
	t.Logf("source stopped: step %s: %s", st.Step, st.LastError)
	if after := d.twinState(t); !reflect.DeepEqual(before, after) {
		t.Fatalf("a failed sync changed the twin:\nbefore %+v\nafter  %+v", before, after)
	}
	if n := queryInt(t, b.ConnectionURI, q); n != 2000 {
		t.Fatalf("branch sees %d customers after the failed sync", n)
	}
	table := d.must(root, "sync", "status")
	if !strings.Contains(table.stdout, "failed") || !strings.Contains(table.stdout, "copy") {
		t.Errorf("sync status table does not show the failure and its step:\n%s", table.stdout)
	}

	// 2. The disk fills up.
	r := d.cli(root, "sync", "now", "--wait")
	if r.code != 1 || !strings.Contains(r.stderr, "sync failed") {
		t.Fatalf("sync now --wait on a full disk: want exit 1 and the failure:\n%s", r)
	}
	st = d.syncStatus(t)
	if st.State != "failed" || !strings.Contains(st.LastError, "no space left") {
		t.Fatalf("sync status after the disk filled: want the failure to say the disk is full: %+v", st)
	}
	t.Logf("disk full: step %s: %s", st.Step, st.LastError)
	if after := d.twinState(t); !reflect.DeepEqual(before, after) {
		t.Fatalf("a failed sync changed the twin:\nbefore %+v\nafter  %+v", before, after)
	}
	if n := queryInt(t, b.ConnectionURI, q); n != 2000 {
		t.Fatalf("branch sees %d customers after the failed sync", n)
	}
	// And the twin still works: without the big table the next sync succeeds.
	src.Exec(t, "shop", "DROP TABLE events")
	d.syncOK(t)

	// Monitoring sees every run and how it ended.
	m := d.metrics(t)
	for _, want := range []string{
		`pgtwin_sync_duration_seconds_count{result="ok"} 2`,
		`pgtwin_sync_duration_seconds_count{result="failed"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}
