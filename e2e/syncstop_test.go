package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/internal/sample"
	"github.com/pgtwin/pgtwin/twin/api"
)

// TestSyncStop: `sync stop` stops following and the stop holds across a
// daemon restart (no slot is taken again); `sync now` follows again from
// the slot; `sync stop --drop-slot` leaves no slot or pgtwin publication on
// the source, after which only --resync follows again. In dump mode the
// command is an error that says so.
func TestSyncStop(t *testing.T) {
	src := pgtest.Start(t, pgtest.Options{Logical: true, Databases: []string{"shop"}})
	src.Exec(t, "shop", sample.Luhn+sample.Schema)
	src.Exec(t, "shop", sample.Data(200))
	cfg := syncConfig(t, src, filepath.Join(t.TempDir(), "mask.key"), syncOpts{mode: "logical"})
	cfg = strings.Replace(cfg, `mode = "logical"`, "mode = \"logical\"\nretained_wal_warning = \"1MiB\"", 1)
	d := startDaemon(t, daemonOpts{Driver: "btrfs", Extra: cfg})
	d.waitStreaming(t, 3*time.Minute)
	slots := func() string {
		return src.Psql(t, "shop", "SELECT count(*) || ':' || count(*) FILTER (WHERE active) FROM pg_replication_slots WHERE slot_name = 'pgtwin'")
	}
	pubs := func() string {
		return src.Psql(t, "shop", "SELECT count(*) FROM pg_publication WHERE pubname = 'pgtwin'")
	}

	r := d.must(root, "sync", "stop")
	if !strings.Contains(r.stdout, "stopped") || !strings.Contains(r.stdout, "kept") {
		t.Errorf("sync stop said: %s", r.stdout)
	}
	if st := d.syncStatus(t); st.State != api.SyncStopped {
		t.Errorf("after sync stop the state is %q, want stopped", st.State)
	}
	eventually(t, 30*time.Second, "the slot kept but let go", func() bool { return slots() == "1:0" })
	d.stop()
	d.start()
	time.Sleep(2 * time.Second) // time enough to connect, were it to
	if st := d.syncStatus(t); st.State != api.SyncStopped {
		t.Errorf("after a restart the stopped sync is %q, want stopped", st.State)
	}
	if s := slots(); s != "1:0" {
		t.Errorf("after a restart of a stopped sync the source's slot is %s (count:active), want 1:0", s)
	}

	// Stopped, the slot still holds WAL: status reads it from the source.
	src.Exec(t, "shop", "CREATE TABLE filler (i int PRIMARY KEY, pad text); INSERT INTO filler SELECT i, repeat('x', 200) FROM generate_series(1, 10000) i")
	eventually(t, 45*time.Second, "lag of a stopped sync read from the source", func() bool {
		st := d.syncStatus(t)
		return st.LagBytes != nil && *st.LagBytes > 1<<20 && st.RetainedWAL != nil && *st.RetainedWAL >= *st.LagBytes
	})
	// Past sync.retained_wal_warning (1 MiB here) both statuses say so.
	if st := d.syncStatus(t); !slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.Contains(w, "sync stop --drop-slot") }) {
		t.Errorf("sync status warnings with %d bytes retained: %q, want one pointing at sync stop --drop-slot", *st.RetainedWAL, st.Warnings)
	}
	if r := d.must(root, "status"); !strings.Contains(r.stdout, "retained_wal_warning") {
		t.Errorf("pgtwin status does not show the retained WAL warning:\n%s", r.stdout)
	}
	src.Exec(t, "shop", "INSERT INTO customers (email, full_name) VALUES ('while.stopped@example.org', 'While Stopped')")
	id := d.snapshotNow(t) // follows again, catches up, snapshots
	b := d.create(t, root, "after-stop", "--parent", id)
	if n := queryInt(t, b.ConnectionURI, "SELECT count(*) FROM customers"); n != 201 {
		t.Errorf("a branch after following again sees %d customers, want 201", n)
	}

	r = d.must(root, "sync", "stop", "--drop-slot")
	if !strings.Contains(r.stdout, "dropped") {
		t.Errorf("sync stop --drop-slot said: %s", r.stdout)
	}
	if s, p := slots(), pubs(); s != "0:0" || p != "0" {
		t.Errorf("after --drop-slot the source has slots %s and publications %s named pgtwin, want none", s, p)
	}
	r = d.cli(root, "sync", "now")
	if r.code != 1 || !strings.Contains(r.stderr, "--resync") {
		t.Errorf("sync now after --drop-slot: want exit 1 pointing to --resync: %s", r)
	}
	d.must(root, "sync", "now", "--resync")
	d.waitStreaming(t, 3*time.Minute)
	if s := slots(); s != "1:1" {
		t.Errorf("after --resync the slot is %s, want 1:1", s)
	}

	dump := startDaemon(t, daemonOpts{Driver: "btrfs", Extra: syncConfig(t, src, filepath.Join(t.TempDir(), "mask.key"), syncOpts{})})
	r = dump.cli(root, "sync", "stop", "--drop-slot")
	if r.code != 1 || !strings.Contains(r.stderr, "dump mode") {
		t.Errorf("sync stop in dump mode: want exit 1 saying dump mode: %s", r)
	}
}
