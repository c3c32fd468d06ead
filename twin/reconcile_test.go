package twin

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/twin/api"
)

// After a crash the records say creating, resetting or deleting with volumes
// half there; a new start leaves every branch ready or gone, and no volume
// or process orphaned.
func TestReconcileAfterCrash(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", nil)
	ctx := context.Background()
	f.mainExec("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
	s1, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ok := f.create(alice, api.CreateBranchRequest{Name: "ok"})
	exec(t, dial(t, ok.ConnectionURI), "INSERT INTO t VALUES (2)")
	r1 := f.create(alice, api.CreateBranchRequest{Name: "reset/gone"})
	r2 := f.create(alice, api.CreateBranchRequest{Name: "reset/there"})
	for _, b := range []api.Branch{r1, r2} {
		c := dial(t, b.ConnectionURI)
		exec(t, c, "INSERT INTO t VALUES (9)")
		c.Close(ctx)
	}
	del := f.create(alice, api.CreateBranchRequest{Name: "del"})
	kid := f.create(alice, api.CreateBranchRequest{Name: "ok/kid", Parent: "ok"})

	ids := map[string]string{}
	for _, n := range []string{"ok", "reset/gone", "reset/there", "ok/kid"} {
		ids[n] = f.record(n).ID
	}
	// The crash: the daemon stops; instances keep running.
	f.tw.Stop()
	tw, eng := f.tw, f.eng
	var pids []int
	pidOf := func(vol string) {
		inst, ok := eng.Instance(vol)
		if !ok {
			t.Fatalf("%s not running", vol)
		}
		pids = append(pids, inst.PID)
	}

	// reset/gone: reset recorded, old volume destroyed, new one not made.
	rec := f.record("reset/gone")
	rec.State = api.StateResetting
	must(t, tw.st.saveBranch(rec))
	must(t, eng.Destroy(ctx, rec.ID))
	// reset/there: reset recorded, nothing done yet.
	rec = f.record("reset/there")
	rec.State = api.StateResetting
	must(t, tw.st.saveBranch(rec))
	// del: delete recorded, volume still there and running.
	rec = f.record("del")
	pidOf(rec.ID)
	rec.State = stateDeleting
	must(t, tw.st.saveBranch(rec))
	// ok/kid: a child whose reset took a snapshot of its parent, then crashed.
	rec = f.record("ok/kid")
	rec.State = api.StateResetting
	rec.Snapshot = "s-pending-never-finished"
	must(t, tw.st.saveBranch(rec))
	must(t, tw.st.saveSnapshot(snapshotRecord{ID: "s-pending-never-finished", Volume: "snap-000000000001", Origin: "ok", State: stateCreating, CreatedAt: time.Now()}))
	must(t, eng.Snapshot(ctx, f.record("ok").ID, "snap-000000000001"))
	// half: create recorded, clone made and even started.
	snapVol := tw.snaps[s1.ID].Volume
	half := branchRecord{ID: "b-0000000000a1", Name: "half", Parent: MainName, Snapshot: s1.ID, State: stateCreating,
		Owner: "alice", OwnerUID: alice.UID, CreatedAt: time.Now(), Port: 17990, Password: "x", Database: "app"}
	must(t, tw.st.saveBranch(half))
	must(t, eng.Clone(ctx, snapVol, half.ID))
	if _, err := eng.Start(ctx, half.ID, engine.InstanceSpec{Port: 17990}); err != nil {
		t.Fatal(err)
	}
	pidOf(half.ID)
	// half2: create recorded, nothing made.
	half2 := half
	half2.ID, half2.Name, half2.Port = "b-0000000000a2", "half2", 17991
	must(t, tw.st.saveBranch(half2))
	// An orphan clone, running, that no record names.
	must(t, eng.Clone(ctx, snapVol, "b-0000000000ff"))
	if _, err := eng.Start(ctx, "b-0000000000ff", engine.InstanceSpec{Port: 17992}); err != nil {
		t.Fatal(err)
	}
	pidOf("b-0000000000ff")
	// A snapshot half taken.
	must(t, tw.st.saveSnapshot(snapshotRecord{ID: "s-half", Volume: "snap-0000000000b1", Origin: MainName, State: stateCreating, CreatedAt: time.Now()}))
	must(t, eng.Snapshot(ctx, tw.main.Volume, "snap-0000000000b1"))
	// A main replacement half built.
	m := *tw.main
	m.Pending, m.PendingPort = "main-99", 17993
	must(t, tw.st.saveMain(m))
	must(t, eng.InitVolume(ctx, "main-99", engine.InitOptions{Superuser: superuser}))
	if _, err := eng.Start(ctx, "main-99", engine.InstanceSpec{Port: 17993}); err != nil {
		t.Fatal(err)
	}
	pidOf("main-99")
	mainPort := tw.main.Port

	f.open(nil)
	if err := f.tw.Start(ctx); err != nil {
		t.Fatalf("start after crash: %v", err)
	}

	list := f.tw.ListBranches(ctx, alice) // her view has the passwords
	names := map[string]api.Branch{}
	for _, b := range list {
		names[b.Name] = b
		if b.State != api.StateReady {
			t.Errorf("branch %s is %s after reconcile", b.Name, b.State)
		}
	}
	for _, n := range []string{"ok", "ok/kid", "reset/gone", "reset/there"} {
		if _, ok := names[n]; !ok {
			t.Errorf("branch %s missing after reconcile", n)
		}
	}
	if len(list) != 4 {
		t.Fatalf("branches after reconcile: %+v", list)
	}
	for n, id := range ids {
		if got := f.record(n).ID; got != id {
			t.Errorf("branch %s has volume %s after reconcile, was %s", n, got, id)
		}
	}
	for _, b := range []api.Branch{ok, r1, r2, kid} {
		if names[b.Name].Port != b.Port || names[b.Name].ConnectionURI != b.ConnectionURI {
			t.Errorf("%s changed port or URL: %+v", b.Name, names[b.Name])
		}
	}
	wantInts(t, "ok keeps its writes", ints(t, dial(t, ok.ConnectionURI), "SELECT x FROM t ORDER BY x"), 1, 2)
	wantInts(t, "reset/gone rolled forward", ints(t, dial(t, r1.ConnectionURI), "SELECT x FROM t ORDER BY x"), 1)
	wantInts(t, "reset/there rolled forward", ints(t, dial(t, r2.ConnectionURI), "SELECT x FROM t ORDER BY x"), 1)
	wantInts(t, "ok/kid reset to its parent's state", ints(t, dial(t, kid.ConnectionURI), "SELECT x FROM t ORDER BY x"), 1, 2)
	if f.tw.main.Port != mainPort || f.tw.main.Pending != "" {
		t.Errorf("main after reconcile: %+v", *f.tw.main)
	}

	// Exactly the volumes the records name remain.
	want := map[string]bool{f.tw.main.Volume: true}
	f.tw.mu.Lock()
	for _, s := range f.tw.snaps {
		if s.State != stateReady {
			t.Errorf("snapshot %s left %s", s.ID, s.State)
		}
		want[s.Volume] = true
	}
	for _, b := range f.tw.branches {
		want[b.ID] = true
	}
	_, halfSnap := f.tw.snaps["s-half"]
	f.tw.mu.Unlock()
	if halfSnap {
		t.Error("half-taken snapshot still recorded")
	}
	got := f.volumes()
	if len(got) != len(want) {
		t.Errorf("volumes %v, want %v", got, want)
	}
	for v := range want {
		if !got[v] {
			t.Errorf("volume %s missing", v)
		}
	}
	// No postmaster of a removed volume survives.
	waitFor(t, "orphaned postmasters gone", func() bool {
		for _, pid := range pids {
			if _, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil {
				return false
			}
		}
		return true
	})
	// And the state dir holds only what is listed.
	ents, _ := os.ReadDir(f.tw.st.branchDir())
	if len(ents) != 4 {
		t.Errorf("branch records: %d files, want 4", len(ents))
	}
	_ = del
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
