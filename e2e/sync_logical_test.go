package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/twin/api"
)

// TestSyncLogicalDaemon: with sync.mode = "logical" the daemon fills main
// from the slot's snapshot, follows the source, and `sync now` takes a
// snapshot that records the source LSN; a branch from it sees the change.
func TestSyncLogicalDaemon(t *testing.T) {
	src := startShopOpts(t, 500, pgtest.Options{Logical: true})
	d := startSyncDaemon(t, src, syncOpts{mode: "logical"})
	eventually(t, 2*time.Minute, "logical sync streams", func() bool {
		st := d.syncStatus(t)
		if st.State == "failed" || st.State == "needs-resync" {
			t.Fatalf("logical sync: %+v", st)
		}
		return st.State == "streaming"
	})
	if n := d.mainQueryInt(t, "SELECT count(*) FROM customers"); n != 500 {
		t.Fatalf("main has %d customers after the initial copy, want 500", n)
	}
	src.Exec(t, "shop", "INSERT INTO customers (email, full_name) VALUES ('late.arrival@gmail.com', 'Late Arrival')")
	eventually(t, time.Minute, "the insert reaches main", func() bool {
		return d.mainQueryInt(t, "SELECT count(*) FROM customers") == 501
	})
	if n := d.mainQueryInt(t, "SELECT count(*) FROM customers WHERE email = 'late.arrival@gmail.com'"); n != 0 {
		t.Fatalf("the streamed row reached main unmasked")
	}
	st := decode[api.SyncStatus](t, d.must(root, "sync", "now", "-o", "json"))
	if st.Mode != "logical" || st.Snapshot == "" {
		t.Fatalf("sync now in logical mode: %+v", st)
	}
	var snap *api.Snapshot
	for _, s := range decode[[]api.Snapshot](t, d.must(root, "snapshots", "list", "-o", "json")) {
		if s.ID == st.Snapshot {
			snap = &s
		}
	}
	if snap == nil || snap.SourceLSN == nil || !strings.Contains(*snap.SourceLSN, "/") {
		t.Fatalf("snapshot %s from sync now has no source LSN: %+v", st.Snapshot, snap)
	}
	b := d.create(t, root, "logical", "--parent", st.Snapshot)
	if n := queryInt(t, b.ConnectionURI, "SELECT count(*) FROM customers"); n != 501 {
		t.Fatalf("branch of the logical snapshot sees %d customers, want 501", n)
	}
	if r := d.must(root, "sync", "status"); !strings.Contains(r.stdout, "streaming") {
		t.Errorf("sync status table in logical mode:\n%s", r.stdout)
	}
}
