package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/internal/sample"
	"github.com/pgtwin/pgtwin/twin/api"
)

// startLogicalDaemon starts a daemon in logical mode following src and
// waits until it streams.
func startLogicalDaemon(t *testing.T, src *pgtest.Cluster) *daemon {
	t.Helper()
	key := filepath.Join(t.TempDir(), "mask.key")
	cfg := syncConfig(t, src, key, syncOpts{})
	if !strings.Contains(cfg, `mode = "dump"`) {
		t.Fatalf("sync config has no mode to switch:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, `mode = "dump"`, `mode = "logical"`, 1)
	d := startDaemon(t, daemonOpts{Driver: "btrfs", Extra: cfg})
	d.waitStreaming(t, 3*time.Minute)
	return d
}

func (d *daemon) waitStreaming(t *testing.T, timeout time.Duration) api.SyncStatus {
	t.Helper()
	var st api.SyncStatus
	eventually(t, timeout, "logical sync streaming", func() bool {
		st = d.syncStatus(t)
		if st.State == "failed" || st.State == "needs-resync" {
			t.Fatalf("logical sync %s: %s\n%s", st.State, st.LastError, d.logTail(30))
		}
		return st.State == "streaming"
	})
	return st
}

// snapshotNow runs `sync now -o json` and returns the snapshot it took.
func (d *daemon) snapshotNow(t *testing.T) string {
	t.Helper()
	st := decode[api.SyncStatus](t, d.must(root, "sync", "now", "-o", "json"))
	if st.Snapshot == "" || st.Mode != "logical" {
		t.Fatalf("sync now in logical mode: %+v", st)
	}
	return st.Snapshot
}

// TestSyncLogical: in logical mode main follows a live source with masking;
// `sync now` takes a snapshot recording the source LSN, and a branch of it
// sees the latest changes, masked; after kill -9 of the daemon following
// resumes with nothing lost or doubled; status shows the slot; no raw PII
// value is under data_dir or in the log.
func TestSyncLogical(t *testing.T) {
	const customers = 2000
	src := pgtest.Start(t, pgtest.Options{Logical: true, Databases: []string{"shop"}})
	src.Exec(t, "shop", sample.Luhn+sample.Schema)
	src.Exec(t, "shop", sample.Data(customers))
	d := startLogicalDaemon(t, src)

	const planted = "Zebediah Quackenbush"
	src.Exec(t, "shop", fmt.Sprintf(`INSERT INTO customers (email, full_name, phone) VALUES ('zeb.q@gmail.com', '%s', '+1 (999) 555-0101');
		UPDATE orders SET total = total + 1 WHERE id <= 10;
		DELETE FROM payments WHERE id = 3`, planted))
	id := d.snapshotNow(t)
	var snap api.Snapshot
	for _, s := range decode[[]api.Snapshot](t, d.must(root, "snapshots", "list", "-o", "json")) {
		if s.ID == id {
			snap = s
		}
	}
	if snap.ID == "" || snap.SourceLSN == nil || *snap.SourceLSN == "" {
		t.Fatalf("snapshot %s has no source_lsn: %+v", id, snap)
	}
	b := d.create(t, root, "live", "--parent", id)
	if n := queryInt(t, b.ConnectionURI, "SELECT count(*) FROM customers"); n != customers+1 {
		t.Errorf("branch of the logical snapshot sees %d customers, want %d", n, customers+1)
	}
	if n := queryInt(t, b.ConnectionURI, "SELECT count(*) FROM customers WHERE full_name = '"+planted+"'"); n != 0 {
		t.Error("the new customer's name reached the branch unmasked")
	}
	srcConn := connectT(t, src.ConnString("shop"))
	bConn := connectT(t, b.ConnectionURI)
	for _, q := range []string{"SELECT count(*) FROM payments", "SELECT sum(total)::int8 FROM orders"} {
		if s, g := count(t, srcConn, q), count(t, bConn, q); s != g {
			t.Errorf("%s: source %d, branch %d", q, s, g)
		}
	}
	bConn.Close(t.Context())

	st := d.syncStatus(t)
	if st.Slot != "pgtwin" || st.RetainedWAL == nil || st.LagBytes == nil {
		t.Errorf("sync status lacks slot health: %+v", st)
	}

	// kill -9 while the source writes; following resumes.
	src.Exec(t, "shop", "INSERT INTO customers (email, full_name) SELECT 'bulk' || i || '@example.org', 'Bulk ' || i FROM generate_series(1, 3000) i")
	d.kill9()
	src.Exec(t, "shop", "UPDATE customers SET phone = '+1 (555) 000-1111' WHERE id <= 100")
	d.restart()
	d.waitStreaming(t, 3*time.Minute)
	src.Exec(t, "shop", "INSERT INTO customers (email, full_name) VALUES ('after.restart@example.org', 'After Restart')")
	id2 := d.snapshotNow(t)
	b2 := d.create(t, root, "live2", "--parent", id2)
	b2Conn := connectT(t, b2.ConnectionURI)
	for _, q := range []string{"SELECT count(*) FROM customers", "SELECT count(DISTINCT id) FROM customers", "SELECT count(*) FROM customers WHERE phone IS NULL"} {
		if s, g := count(t, srcConn, q), count(t, b2Conn, q); s != g {
			t.Errorf("after kill -9: %s: source %d, branch %d", q, s, g)
		}
	}
	b2Conn.Close(t.Context())

	// No leak under data_dir (spill files and WAL included) or in the log.
	needles := leakNeedles(t, srcConn)
	extra := []string{planted, "zeb.q@gmail.com"}
	files, n, hits := scanTree(t, d.DataDir, needles, extra)
	if len(hits) > 0 {
		if len(hits) > 20 {
			hits = hits[:20]
		}
		t.Errorf("raw PII under data_dir:\n%s", strings.Join(hits, "\n"))
	}
	logb, err := os.ReadFile(d.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if lh := findNeedles(logb, needles, extra); len(lh) > 0 {
		t.Errorf("raw PII in the daemon log: %v", lh)
	}
	t.Logf("leak scan: %d files, %.1f MiB under data_dir, %d raw values looked for", files, float64(n)/(1<<20), len(needles))
}
