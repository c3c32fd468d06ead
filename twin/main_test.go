package twin

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/twin/api"
)

// ReplaceMain builds a new main beside the old one and switches atomically
// on success; on failure nothing changes.
func TestReplaceMain(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", nil)
	ctx := context.Background()
	f.mainExec("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
	if _, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	before := f.create(alice, api.CreateBranchRequest{Name: "before"})
	oldVol, oldPort := f.tw.main.Volume, f.tw.main.Port
	snapsBefore := f.tw.ListSnapshots(ctx, RootCaller)

	// Failure: the half-built main goes, nothing else changes.
	boom := errors.New("source went away")
	var failedVol string
	_, err := f.tw.ReplaceMain(ctx, engine.DatabaseLocale{}, func(ctx context.Context, inst *engine.Instance) error {
		failedVol = inst.ID
		conn, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, "app"))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "SET ROLE pgtwin_owner; SET search_path = public; CREATE TABLE t (x int); INSERT INTO t VALUES (666)"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed build: got %v", err)
	}
	if f.volumes()[failedVol] {
		t.Fatalf("volume %s of the failed build left", failedVol)
	}
	if f.tw.main.Volume != oldVol || f.tw.main.Port != oldPort || f.tw.main.Pending != "" {
		t.Fatalf("main changed by a failed replace: %+v", *f.tw.main)
	}
	if n := len(f.tw.ListSnapshots(ctx, RootCaller)); n != len(snapsBefore) {
		t.Fatalf("snapshots %d, want %d", n, len(snapsBefore))
	}
	wantInts(t, "main after failed replace", f.mainInts("SELECT x FROM t"), 1)

	// Success: new content, a snapshot of it, old main gone, branches kept.
	snap, err := f.tw.ReplaceMain(ctx, engine.DatabaseLocale{}, func(ctx context.Context, inst *engine.Instance) error {
		conn, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, f.tw.MainDatabase()))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		// A fresh cluster: the owner role and database exist, nothing else.
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil || n != 0 {
			return errors.New("new main is not empty")
		}
		// Filled without WAL for what the fill creates.
		var level string
		if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil || level != "minimal" {
			return fmt.Errorf("new main runs with wal_level %q (%v), want minimal while it is filled", level, err)
		}
		_, err = conn.Exec(ctx, "SET ROLE pgtwin_owner; SET search_path = public; CREATE TABLE t (x int); INSERT INTO t VALUES (10), (20)")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Made from the template, which stays for the next replace; and
	// restarted with the usual settings.
	tmpl := f.tw.main.Template
	if tmpl == "" || !f.volumes()[tmpl] {
		t.Fatalf("no main template after a replace: %+v", *f.tw.main)
	}
	if got := f.mainStrings("SHOW wal_level"); len(got) != 1 || got[0] == "minimal" {
		t.Fatalf("main after replace runs with wal_level %v", got)
	}
	if f.tw.main.Volume == oldVol || f.volumes()[oldVol] {
		t.Fatalf("old main %s still there (main %+v)", oldVol, *f.tw.main)
	}
	if l := f.tw.ListSnapshots(ctx, RootCaller); l[len(l)-1].ID != snap.ID {
		t.Fatalf("newest snapshot %s, want %s", l[len(l)-1].ID, snap.ID)
	}
	wantInts(t, "main after replace", f.mainInts("SELECT x FROM t ORDER BY x"), 10, 20)
	wantInts(t, "branch made before keeps its data", ints(t, dial(t, before.ConnectionURI), "SELECT x FROM t ORDER BY x"), 1)
	after := f.create(alice, api.CreateBranchRequest{Name: "after"})
	if after.Snapshot != snap.ID {
		t.Fatalf("new branch from %s, want %s", after.Snapshot, snap.ID)
	}
	wantInts(t, "branch made after", ints(t, dial(t, after.ConnectionURI), "SELECT x FROM t ORDER BY x"), 10, 20)

	// The switch survives a restart, and the template too.
	vol := f.tw.main.Volume
	f.restart()
	if f.tw.main.Volume != vol {
		t.Fatalf("main after restart %s, want %s", f.tw.main.Volume, vol)
	}
	if f.tw.main.Template != tmpl || !f.volumes()[tmpl] {
		t.Fatalf("template %s after restart, want %s kept", f.tw.main.Template, tmpl)
	}
	wantInts(t, "main after restart", f.mainInts("SELECT x FROM t ORDER BY x"), 10, 20)
	st := f.tw.Status(ctx, RootCaller)
	if st.Main.State != stateReady || st.Main.LatestSnapshot != snap.ID || st.Main.Database != "app" {
		t.Fatalf("status: %+v", st.Main)
	}
}

func (f *fx) mainStrings(sql string) []string {
	f.t.Helper()
	ctx := context.Background()
	conn, err := f.tw.MainConn(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}
