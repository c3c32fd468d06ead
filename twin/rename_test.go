package twin

import (
	"context"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/twin/api"
)

// TestCIVerbs: create --if-not-exists, set-ttl and rename, each with its
// error cases, and a rename a crash interrupted rolled forward at start.
func TestCIVerbs(t *testing.T) {
	t.Parallel()
	f := newFx(t, "copy", nil)
	ctx := context.Background()

	// --if-not-exists: made once, then returned unchanged whatever else
	// the request says.
	b1, existed, err := f.tw.EnsureBranch(ctx, alice, api.CreateBranchRequest{Name: "preview/pr-1"})
	if err != nil || existed || b1.State != api.StateReady {
		t.Fatalf("first ensure: %+v existed=%v %v", b1, existed, err)
	}
	b2, existed, err := f.tw.EnsureBranch(ctx, alice, api.CreateBranchRequest{Name: "preview/pr-1", TTL: "1h", Protect: true})
	if err != nil || !existed {
		t.Fatalf("second ensure: existed=%v %v", existed, err)
	}
	if b2.Port != b1.Port || b2.ConnectionURI != b1.ConnectionURI || b2.ExpiresAt != nil || b2.Protected {
		t.Fatalf("second ensure changed the branch: %+v, was %+v", b2, b1)
	}
	_, _, err = f.tw.EnsureBranch(ctx, bob, api.CreateBranchRequest{Name: "preview/pr-1"})
	wantErr(t, "ensure of another user's branch", err, ErrConflict)
	_, _, err = f.tw.EnsureBranch(ctx, alice, api.CreateBranchRequest{Name: "preview/-rf"})
	wantErr(t, "ensure of an invalid name", err, ErrInvalid)
	if n := len(f.tw.ListBranches(ctx, RootCaller)); n != 1 {
		t.Fatalf("%d branches after the ensures, want 1", n)
	}

	// set-ttl: from now; 0 removes it.
	ttl := func(c Caller, name, d string) (api.Branch, error) {
		return f.tw.UpdateBranch(ctx, c, name, api.UpdateBranchRequest{TTL: &d})
	}
	b, err := ttl(alice, "preview/pr-1", "2h")
	if err != nil || b.ExpiresAt == nil || time.Until(*b.ExpiresAt) < 119*time.Minute || time.Until(*b.ExpiresAt) > 121*time.Minute {
		t.Fatalf("set-ttl 2h: %+v %v", b.ExpiresAt, err)
	}
	if b, err = ttl(alice, "preview/pr-1", "0"); err != nil || b.ExpiresAt != nil {
		t.Fatalf("set-ttl 0: %+v %v", b.ExpiresAt, err)
	}
	_, err = ttl(alice, "preview/pr-1", "soon")
	wantErr(t, "set-ttl soon", err, ErrInvalid)
	_, err = ttl(alice, "preview/pr-1", "-1h")
	wantErr(t, "set-ttl -1h", err, ErrInvalid)
	_, err = ttl(bob, "preview/pr-1", "1h")
	wantErr(t, "set-ttl of another user's branch", err, ErrNotFound)
	_, err = ttl(alice, "nope", "1h")
	wantErr(t, "set-ttl of no branch", err, ErrNotFound)

	// rename: same URL, the child follows, the old name is free.
	kid := f.create(alice, api.CreateBranchRequest{Name: "preview/pr-1-kid", Parent: "preview/pr-1"})
	f.create(alice, api.CreateBranchRequest{Name: "dev/taken"})
	if _, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{Name: "nightly"}); err != nil {
		t.Fatal(err)
	}
	rename := func(c Caller, name, to string) (api.Branch, error) {
		return f.tw.UpdateBranch(ctx, c, name, api.UpdateBranchRequest{Name: &to})
	}
	for _, bad := range []struct {
		to   string
		kind error
	}{
		{"dev/taken", ErrConflict}, {"main", ErrInvalid}, {"dev/-x", ErrInvalid}, {"Bad Name", ErrInvalid}, {"", ErrInvalid},
		{"nightly", ErrConflict},
	} {
		_, err := rename(alice, "preview/pr-1", bad.to)
		wantErr(t, "rename to "+bad.to, err, bad.kind)
	}
	_, err = rename(bob, "preview/pr-1", "bob/mine")
	wantErr(t, "rename of another user's branch", err, ErrNotFound)
	r, err := rename(alice, "preview/pr-1", "preview/pr-2")
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "preview/pr-2" || r.Port != b1.Port || r.ConnectionURI != b1.ConnectionURI {
		t.Fatalf("renamed: %+v, was %+v", r, b1)
	}
	if _, err := f.tw.GetBranch(ctx, alice, "preview/pr-1"); err == nil {
		t.Fatal("old name still answers")
	}
	c := dial(t, r.ConnectionURI)
	exec(t, c, "SELECT 1")
	if k := f.record("preview/pr-1-kid"); k.Parent != "preview/pr-2" {
		t.Fatalf("child's parent %q after rename", k.Parent)
	}
	f.tw.mu.Lock()
	origin := f.tw.snaps[kid.Snapshot].Origin
	f.tw.mu.Unlock()
	if origin != "preview/pr-2" {
		t.Fatalf("child's snapshot origin %q after rename", origin)
	}
	if _, err := f.tw.ResetBranch(ctx, alice, "preview/pr-1-kid"); err != nil {
		t.Fatalf("reset of the child after its parent's rename: %v", err)
	}
	f.create(alice, api.CreateBranchRequest{Name: "preview/pr-1"}) // the old name is free

	// A crash after the branch's own record was written but before its
	// child's: the start finishes the rename.
	f.tw.mu.Lock()
	rec := *f.tw.branches["preview/pr-2"]
	f.tw.mu.Unlock()
	f.tw.Stop()
	rec.Name, rec.RenamedFrom = "preview/pr-3", "preview/pr-2"
	if err := f.tw.st.saveBranch(rec); err != nil {
		t.Fatal(err)
	}
	f.open(nil)
	if err := f.tw.Start(ctx); err != nil {
		t.Fatalf("start after a crash mid-rename: %v", err)
	}
	if r := f.record("preview/pr-3"); r.RenamedFrom != "" || r.Port != b1.Port || r.Password != rec.Password {
		t.Fatalf("after the crash: %+v", r)
	}
	if k := f.record("preview/pr-1-kid"); k.Parent != "preview/pr-3" {
		t.Fatalf("child's parent %q after the rolled-forward rename", k.Parent)
	}
	if _, err := f.tw.GetBranch(ctx, alice, "preview/pr-2"); err == nil {
		t.Fatal("old name answers after the rolled-forward rename")
	}
}
