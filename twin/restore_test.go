package twin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/twin/api"
)

// TestRestoreAt: restore --at puts a branch back to main's newest snapshot
// not newer than the time, same URL, and says a snapshot stood in (at,
// at_exact false); create --at says the same; a time before every snapshot,
// a missing --at and a protected branch are refused; a restore cut off by
// a crash is finished to the same time, not to the newest state.
func TestRestoreAt(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", nil)
	ctx := context.Background()
	now := time.Now().UTC()
	for i, age := range []time.Duration{3 * time.Hour, time.Hour} {
		f.mainExec("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (" + string(rune('1'+i)) + ")")
		s, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{Name: "r" + string(rune('0'+i))})
		if err != nil {
			t.Fatal(err)
		}
		f.tw.mu.Lock()
		err = f.tw.updateSnapshot(f.tw.snaps[s.ID], func(r *snapshotRecord) { r.CreatedAt = now.Add(-age) })
		f.tw.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.tw.mu.Lock()
	for _, s := range f.tw.snaps {
		if !strings.HasPrefix(s.ID, "r") {
			_ = f.tw.updateSnapshot(s, func(r *snapshotRecord) { r.CreatedAt = now.Add(-10 * time.Hour) })
		}
	}
	f.tw.mu.Unlock()

	at := f.create(alice, api.CreateBranchRequest{Name: "dev/at", At: "2h"})
	if at.Snapshot != "r0" || at.At == nil || at.AtExact == nil || *at.AtExact || now.Add(-2*time.Hour).Sub(*at.At).Abs() > time.Minute {
		t.Fatalf("create --at 2h: snapshot %s at %v exact %v", at.Snapshot, at.At, at.AtExact)
	}

	b := f.create(alice, api.CreateBranchRequest{Name: "dev/r"})
	if b.At != nil || b.AtExact != nil {
		t.Fatalf("a plain create has at: %+v", b)
	}
	c := dial(t, b.ConnectionURI)
	wantInts(t, "newest", ints(t, c, "SELECT x FROM t ORDER BY x"), 1, 2)
	c.Close(ctx)
	r, err := f.tw.RestoreBranch(ctx, alice, "dev/r", api.RestoreBranchRequest{At: now.Add(-2 * time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Snapshot != "r0" || r.ConnectionURI != b.ConnectionURI || r.Port != b.Port || r.AtExact == nil || *r.AtExact {
		t.Fatalf("restore: %+v, was %+v", r, b)
	}
	c = dial(t, b.ConnectionURI)
	wantInts(t, "restored to 2h ago", ints(t, c, "SELECT x FROM t ORDER BY x"), 1)
	c.Close(ctx)

	_, err = f.tw.RestoreBranch(ctx, alice, "dev/r", api.RestoreBranchRequest{At: "48h"})
	wantErr(t, "restore before every snapshot", err, ErrNotFound)
	_, err = f.tw.RestoreBranch(ctx, alice, "dev/r", api.RestoreBranchRequest{})
	wantErr(t, "restore without --at", err, ErrInvalid)
	_, err = f.tw.RestoreBranch(ctx, alice, "dev/r", api.RestoreBranchRequest{At: "yesterday"})
	wantErr(t, "restore --at yesterday", err, ErrInvalid)
	_, err = f.tw.RestoreBranch(ctx, bob, "dev/r", api.RestoreBranchRequest{At: "2h"})
	wantErr(t, "restore of another user's branch", err, ErrNotFound)
	if g, _ := f.tw.GetBranch(ctx, alice, "dev/r"); g.Snapshot != "r0" || g.State != api.StateReady {
		t.Fatalf("a refused restore touched the branch: %+v", g)
	}

	// reset: the newest state, and no at.
	if r, err = f.tw.ResetBranch(ctx, alice, "dev/r"); err != nil || r.Snapshot != "r1" || r.At != nil {
		t.Fatalf("reset after restore: %+v %v", r, err)
	}

	// A crash mid-restore: the record says resetting, to 2h ago.
	f.tw.mu.Lock()
	rec := *f.tw.branches["dev/r"]
	f.tw.mu.Unlock()
	f.tw.Stop()
	past := now.Add(-2 * time.Hour)
	rec.State, rec.At = api.StateResetting, &past
	if err := f.tw.st.saveBranch(rec); err != nil {
		t.Fatal(err)
	}
	f.open(nil)
	if err := f.tw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if g := f.record("dev/r"); g.State != api.StateReady || g.Snapshot != "r0" {
		t.Fatalf("after a crash mid-restore: state %s snapshot %s, want ready r0", g.State, g.Snapshot)
	}

	prot := true
	if _, err := f.tw.UpdateBranch(ctx, alice, "dev/r", api.UpdateBranchRequest{Protected: &prot}); err != nil {
		t.Fatal(err)
	}
	_, err = f.tw.RestoreBranch(ctx, alice, "dev/r", api.RestoreBranchRequest{At: "2h"})
	wantErr(t, "restore of a protected branch", err, ErrConflict)
}
