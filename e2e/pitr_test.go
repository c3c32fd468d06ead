package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/internal/sample"
	"github.com/pgtwin/pgtwin/twin/api"
)

// pitrWindow is the test's snapshots.pitr_window: short, so the archive's
// trim and the fallback before the window show within the test.
const pitrWindow = 40 * time.Second

// TestBranchAtExact: logical mode with snapshots.pitr_window. Rows commit
// on the source at T1 < T2 < T3 with no snapshot in between; a branch --at
// T2 holds exactly rows 1 and 2 (at_exact true), restore --at T1 moves a
// branch back to row 1; kill -9 of the daemon while main archives a lot of
// WAL leaves an archive of whole segments that a later --at recovers
// through; the archive is trimmed past the window, and a time before the
// window falls back to a snapshot and says so.
func TestBranchAtExact(t *testing.T) {
	src := pgtest.Start(t, pgtest.Options{Logical: true, Databases: []string{"shop"}})
	src.Exec(t, "shop", sample.Luhn+sample.Schema)
	src.Exec(t, "shop", sample.Data(200))
	src.Exec(t, "shop", "CREATE TABLE ticks (id int PRIMARY KEY); CREATE TABLE filler (id bigint PRIMARY KEY, n int)")
	key := filepath.Join(t.TempDir(), "mask.key")
	cfg := strings.Replace(syncConfig(t, src, key, syncOpts{}), `mode = "dump"`, `mode = "logical"`, 1)
	cfg += fmt.Sprintf("\n[snapshots]\npitr_window = %q\n", pitrWindow.String())
	d := startDaemon(t, daemonOpts{Driver: "btrfs", Extra: cfg})
	d.waitStreaming(t, 3*time.Minute)
	s1 := d.snapshotNow(t)

	// mark commits tick id, then waits past the next whole second, which
	// it returns: tick id committed at or before it, the next one after.
	mark := func(id int) time.Time {
		src.Exec(t, "shop", fmt.Sprintf("INSERT INTO ticks VALUES (%d)", id))
		next := time.Now().Truncate(time.Second).Add(time.Second)
		time.Sleep(time.Until(next) + 200*time.Millisecond)
		return next
	}
	ticks := func(uri string) string {
		return strings.Join(strs(t, connectT(t, uri), "SELECT id::text FROM ticks ORDER BY id"), ",")
	}
	waitTwin := func(n int64) {
		eventually(t, time.Minute, fmt.Sprintf("main has %d ticks", n), func() bool {
			return d.mainQueryInt(t, "SELECT count(*) FROM ticks") == n
		})
	}
	t1, t2 := mark(1), mark(2)
	mark(3)
	waitTwin(3)

	rfc := func(at time.Time) string { return at.UTC().Format(time.RFC3339) }
	exact := func(what string, r result) api.Branch {
		t.Helper()
		b := decode[api.Branch](t, r)
		if b.AtExact == nil || !*b.AtExact || b.At == nil {
			t.Fatalf("%s: not exact: %s\n%s", what, r, d.logTail(40))
		}
		return b
	}
	x := exact("create --at T2", d.must(root, "branches", "create", "x", "--at", rfc(t2), "-o", "json"))
	if got := ticks(x.ConnectionURI); got != "1,2" {
		t.Fatalf("branch --at T2 holds ticks %q, want 1,2", got)
	}
	// A snapshot after T3 (the newest state), which restore must pass over.
	d.snapshotNow(t)
	y := d.create(t, root, "y")
	if got := ticks(y.ConnectionURI); got != "1,2,3" {
		t.Fatalf("new branch holds ticks %q", got)
	}
	ry := exact("restore --at T1", d.must(root, "branches", "restore", "y", "--at", rfc(t1), "-o", "json"))
	if got := ticks(y.ConnectionURI); got != "1" || ry.ConnectionURI != y.ConnectionURI {
		t.Fatalf("restore --at T1: ticks %q (want 1), URL %s (was %s)", got, ry.ConnectionURI, y.ConnectionURI)
	}
	// A recovered branch is an ordinary one: it takes writes.
	execURI(t, y.ConnectionURI, "INSERT INTO ticks VALUES (100)")

	// kill -9 while main writes and archives some 60 MB of WAL.
	archive := archiveDir(t, d)
	had := len(segments(t, archive))
	conn := src.Connect(t, "shop")
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 3; i++ {
			if _, err := conn.Exec(t.Context(), fmt.Sprintf("INSERT INTO filler SELECT g, g FROM generate_series(%d, %d) g", i*300000+1, (i+1)*300000)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	eventually(t, 2*time.Minute, "main archives while the filler applies", func() bool {
		return d.mainQueryInt(t, "SELECT count(*) FROM filler") > 0 && len(segments(t, archive)) > had+1
	})
	d.kill9()
	if err := <-done; err != nil {
		t.Fatalf("filler: %v", err)
	}
	d.start()
	d.waitStreaming(t, time.Minute)
	t4 := mark(4)
	mark(5)
	waitTwin(5)
	z := exact("create --at T4 after kill -9", d.must(root, "branches", "create", "z", "--at", rfc(t4), "-o", "json"))
	if got := ticks(z.ConnectionURI); got != "1,2,3,4" {
		t.Fatalf("branch --at T4 holds ticks %q, want 1,2,3,4", got)
	}
	if n := queryInt(t, z.ConnectionURI, "SELECT count(*) FROM filler"); n != 900000 {
		t.Fatalf("branch --at T4 holds %d filler rows, want 900000", n)
	}
	for _, f := range segments(t, archive) {
		if fi, err := os.Stat(filepath.Join(archive, f)); err != nil || fi.Size() != 16<<20 {
			t.Fatalf("archived segment %s is not whole: %v %v", f, fi, err)
		}
	}

	// Trim: once a newer snapshot is older than the window, the segments
	// before it go, and T2 (before the window) falls back to s1.
	before := segments(t, archive)
	d.snapshotNow(t)
	time.Sleep(pitrWindow + time.Second)
	// Everything before the new base's redo segment goes; that segment may
	// still be main's open one, not archived yet, leaving none at all.
	eventually(t, 2*time.Minute, "archive trimmed past the window", func() bool {
		now := segments(t, archive)
		return len(before) > 0 && (len(now) == 0 || now[0] > before[0])
	})
	r := d.must(root, "branches", "create", "old", "--at", rfc(t2), "-o", "json")
	if b := decode[api.Branch](t, r); b.AtExact == nil || *b.AtExact || b.Snapshot != s1 || !strings.Contains(r.stderr, "not that exact moment") {
		t.Fatalf("create --at T2 outside the window: %s", r)
	}
	st := d.must(root, "status")
	if !strings.Contains(st.stdout, "PITR") {
		t.Errorf("status does not show the window:\n%s", st.stdout)
	}
}

// archiveDir is main's one WAL archive directory.
func archiveDir(t *testing.T, d *daemon) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(d.DataDir, "wal-archive", "*"))
	if len(dirs) != 1 {
		t.Fatalf("want one WAL archive under %s, found %v\n%s", d.DataDir, dirs, d.logTail(30))
	}
	return dirs[0]
}

// segments are the whole WAL segments in dir, oldest first.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if n := de.Name(); len(n) == 24 && !strings.HasPrefix(n, ".") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
