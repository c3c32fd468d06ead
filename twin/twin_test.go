package twin

import (
	"context"
	"testing"

	"github.com/pgtwin/pgtwin/twin/api"
)

func TestLifecycleAndIsolation(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", nil)
	ctx := context.Background()

	// Before any sync: an empty database named after the source's, owned
	// by the owner role, with a snapshot to branch from.
	if db := f.tw.MainDatabase(); db != "app" {
		t.Fatalf("main database %q, want app", db)
	}
	if snaps := f.tw.ListSnapshots(ctx, alice); len(snaps) != 1 {
		t.Fatalf("want the initial snapshot, got %+v", snaps)
	}

	wantInts(t, "main's database owned by a NOLOGIN non-superuser owner role", f.mainInts(
		`SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
		 WHERE d.datname = 'app' AND r.rolname = 'pgtwin_owner' AND NOT r.rolcanlogin AND NOT r.rolsuper`), 1)
	wantInts(t, "main's database empty", f.mainInts(
		`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`), 0)
	f.mainExec("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
	if _, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}

	a := f.create(alice, api.CreateBranchRequest{Name: "dev/a"})
	b := f.create(alice, api.CreateBranchRequest{Name: "dev/b"})
	if a.Port == b.Port {
		t.Fatalf("two branches on port %d", a.Port)
	}
	if a.Owner != "alice" || a.Parent != "main" {
		t.Fatalf("branch a: %+v", a)
	}
	ca := dial(t, a.ConnectionURI)
	var super bool
	if err := ca.QueryRow(ctx, "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || super {
		t.Fatalf("branch role must be neither superuser nor createrole (got %v, %v)", super, err)
	}
	exec(t, ca, "INSERT INTO t VALUES (2)")
	exec(t, ca, "CREATE TABLE mine (y int)")
	wantInts(t, "a after write", ints(t, ca, "SELECT x FROM t ORDER BY x"), 1, 2)
	wantInts(t, "main after a's write", f.mainInts("SELECT x FROM t ORDER BY x"), 1)
	cb := dial(t, b.ConnectionURI)
	wantInts(t, "sibling after a's write", ints(t, cb, "SELECT x FROM t ORDER BY x"), 1)

	// get and list
	g, err := f.tw.GetBranch(ctx, alice, "dev/a")
	if err != nil || g.ConnectionURI != a.ConnectionURI || g.Port != a.Port {
		t.Fatalf("get: %+v %v", g, err)
	}
	if l := f.tw.ListBranches(ctx, alice); len(l) != 2 || l[0].Name != "dev/a" || l[1].Name != "dev/b" {
		t.Fatalf("list: %+v", l)
	}

	// reset: same URL, changes gone
	ca.Close(ctx)
	r, err := f.tw.ResetBranch(ctx, alice, "dev/a")
	if err != nil {
		t.Fatal(err)
	}
	if r.ConnectionURI != a.ConnectionURI || r.Port != a.Port || r.State != api.StateReady {
		t.Fatalf("reset changed the branch: %+v vs %+v", r, a)
	}
	ca = dial(t, a.ConnectionURI)
	wantInts(t, "a after reset", ints(t, ca, "SELECT x FROM t ORDER BY x"), 1)
	wantInts(t, "mine after reset", ints(t, ca, "SELECT count(*) FROM pg_tables WHERE tablename = 'mine'"), 0)

	// reset picks main's newest snapshot
	f.mainExec("INSERT INTO t VALUES (3)")
	if _, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{Name: "with-3"}); err != nil {
		t.Fatal(err)
	}
	ca.Close(ctx)
	if r, err = f.tw.ResetBranch(ctx, alice, "dev/a"); err != nil || r.Snapshot != "with-3" {
		t.Fatalf("reset to newest: %+v %v", r, err)
	}
	ca = dial(t, a.ConnectionURI)
	wantInts(t, "a after reset to newest", ints(t, ca, "SELECT x FROM t ORDER BY x"), 1, 3)
	wantInts(t, "b keeps its snapshot", ints(t, cb, "SELECT x FROM t ORDER BY x"), 1)

	// delete
	ca.Close(ctx)
	aID := f.record("dev/a").ID
	if err := f.tw.DeleteBranch(ctx, alice, "dev/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tw.GetBranch(ctx, alice, "dev/a"); err == nil {
		t.Fatal("deleted branch still there")
	}
	if f.volumes()[f.tw.branches["dev/b"].ID] != true {
		t.Fatal("sibling's volume went away")
	}
	if f.volumes()[aID] {
		t.Fatalf("volume %s of the deleted branch left behind", aID)
	}

	// the state survives a restart: same port, same password, adopted
	f.restart()
	g2, err := f.tw.GetBranch(ctx, alice, "dev/b")
	if err != nil || g2.ConnectionURI != b.ConnectionURI || g2.State != api.StateReady {
		t.Fatalf("after restart: %+v %v", g2, err)
	}
	cb2 := dial(t, b.ConnectionURI)
	wantInts(t, "b after daemon restart", ints(t, cb2, "SELECT x FROM t ORDER BY x"), 1)
}
