package twin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/twin/api"
)

// Users see and change only their own branches; admins see all; one user's
// password does not open another's branch.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", nil)
	ctx := context.Background()
	a := f.create(alice, api.CreateBranchRequest{Name: "a1"})
	b := f.create(bob, api.CreateBranchRequest{Name: "b1"})

	if l := f.tw.ListBranches(ctx, alice); len(l) != 1 || l[0].Name != "a1" {
		t.Fatalf("alice lists %+v", l)
	}
	if l := f.tw.ListBranches(ctx, bob); len(l) != 1 || l[0].Name != "b1" {
		t.Fatalf("bob lists %+v", l)
	}
	if l := f.tw.ListBranches(ctx, RootCaller); len(l) != 2 {
		t.Fatalf("root lists %+v", l)
	}
	_, err := f.tw.GetBranch(ctx, alice, "b1")
	wantErr(t, "alice gets bob's", err, ErrNotFound)
	_, err = f.tw.ResetBranch(ctx, alice, "b1")
	wantErr(t, "alice resets bob's", err, ErrNotFound)
	err = f.tw.DeleteBranch(ctx, alice, "b1")
	wantErr(t, "alice deletes bob's", err, ErrNotFound)
	_, err = f.tw.UpdateBranch(ctx, alice, "b1", api.UpdateBranchRequest{Protected: ptr(true)})
	wantErr(t, "alice protects bob's", err, ErrNotFound)
	_, err = f.tw.CreateBranch(ctx, alice, api.CreateBranchRequest{Name: "a2", Parent: "b1"})
	wantErr(t, "alice branches from bob's", err, ErrNotFound)
	if st := f.tw.Status(ctx, alice); st.Branches != 1 {
		t.Fatalf("alice's status counts %d branches", st.Branches)
	}

	// Alice's password against bob's branch, over TCP.
	au, bu := parseURI(t, a.ConnectionURI), parseURI(t, b.ConnectionURI)
	cross := strings.Replace(b.ConnectionURI, "bob:"+bu, "alice:"+au, 1)
	if _, err := pgx.Connect(ctx, cross); err == nil {
		t.Fatal("alice's credentials opened bob's branch")
	}
	if _, err := pgx.Connect(ctx, strings.Replace(b.ConnectionURI, bu, au, 1)); err == nil {
		t.Fatal("alice's password opened bob's role")
	}
	// The superuser is not reachable over TCP.
	if _, err := pgx.Connect(ctx, strings.Replace(b.ConnectionURI, "bob:", superuser+":", 1)); err == nil {
		t.Fatal("superuser reachable over TCP with bob's password")
	}

	// An admin branching from alice's branch: the child carries alice's
	// role, whose password must not open it.
	c := f.create(RootCaller, api.CreateBranchRequest{Name: "root-of-a1", Parent: "a1"})
	if _, err := pgx.Connect(ctx, strings.Replace(c.ConnectionURI, "root:"+parseURI(t, c.ConnectionURI), "alice:"+au, 1)); err == nil {
		t.Fatal("alice's password opened root's branch made from hers")
	}
	dial(t, c.ConnectionURI).Close(ctx)
	if _, err := f.tw.ResetBranch(ctx, RootCaller, "b1"); err != nil {
		t.Fatalf("root resets bob's: %v", err)
	}
	if err := f.tw.DeleteBranch(ctx, RootCaller, "b1"); err != nil {
		t.Fatalf("root deletes bob's: %v", err)
	}
}

func parseURI(t testing.TB, uri string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(uri)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Password
}

func ptr[T any](v T) *T { return &v }

func TestBadInput(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", func(c *config.Config) { c.Branches.MaxBranches = 3 })
	ctx := context.Background()
	for _, name := range []string{"", "main", "..", "a/../b", "a..b", "has space", "UPPER", strings.Repeat("x", 200), "/lead", "trail/", "a//b", "a/./b", "semi;colon"} {
		_, err := f.tw.CreateBranch(ctx, alice, api.CreateBranchRequest{Name: name})
		wantErr(t, "name "+name, err, ErrInvalid)
	}
	_, err := f.tw.CreateBranch(ctx, alice, api.CreateBranchRequest{Name: "x", Parent: "nope"})
	wantErr(t, "unknown parent", err, ErrNotFound)
	_, err = f.tw.CreateBranch(ctx, alice, api.CreateBranchRequest{Name: "x", TTL: "soon"})
	wantErr(t, "bad ttl", err, ErrInvalid)
	_, err = f.tw.CreateBranch(ctx, alice, api.CreateBranchRequest{Name: "x", At: "yesterday"})
	wantErr(t, "bad at", err, ErrInvalid)
	_, err = f.tw.TakeSnapshot(ctx, SnapshotOptions{Name: "Bad Name"})
	wantErr(t, "bad snapshot name", err, ErrInvalid)

	f.create(alice, api.CreateBranchRequest{Name: "p", Protect: true})
	_, err = f.tw.CreateBranch(ctx, bob, api.CreateBranchRequest{Name: "p"})
	wantErr(t, "duplicate", err, ErrConflict)
	err = f.tw.DeleteBranch(ctx, alice, "main")
	wantErr(t, "delete main", err, ErrInvalid)
	err = f.tw.DeleteBranch(ctx, alice, "nope")
	wantErr(t, "delete unknown", err, ErrNotFound)
	err = f.tw.DeleteBranch(ctx, alice, "p")
	wantErr(t, "delete protected", err, ErrConflict)
	_, err = f.tw.ResetBranch(ctx, alice, "p")
	wantErr(t, "reset protected", err, ErrConflict)
	if _, err := f.tw.UpdateBranch(ctx, alice, "p", api.UpdateBranchRequest{Protected: ptr(false)}); err != nil {
		t.Fatal(err)
	}

	f.create(alice, api.CreateBranchRequest{Name: "q"})
	f.create(alice, api.CreateBranchRequest{Name: "q/kid", Parent: "q"})
	_, err = f.tw.CreateBranch(ctx, alice, api.CreateBranchRequest{Name: "r"})
	wantErr(t, "max_branches", err, ErrLimit)
	err = f.tw.DeleteBranch(ctx, alice, "q")
	wantErr(t, "delete with children", err, ErrConflict)
	if !strings.Contains(err.Error(), `q/kid`) {
		t.Fatalf("refusal does not name the child: %v", err)
	}
	// Snapshots in use cannot go; deleting them is for admins.
	snaps := f.tw.ListSnapshots(ctx, alice)
	err = f.tw.DeleteSnapshot(ctx, alice, snaps[0].ID)
	wantErr(t, "user deletes snapshot", err, ErrForbidden)
	err = f.tw.DeleteSnapshot(ctx, RootCaller, snaps[0].ID)
	wantErr(t, "delete used snapshot", err, ErrConflict)
	err = f.tw.DeleteSnapshot(ctx, RootCaller, "nope")
	wantErr(t, "delete unknown snapshot", err, ErrNotFound)
	if _, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{Name: "named"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.tw.TakeSnapshot(ctx, SnapshotOptions{Name: "named"})
	wantErr(t, "duplicate snapshot", err, ErrConflict)
	if err := f.tw.DeleteSnapshot(ctx, RootCaller, "named"); err != nil {
		t.Fatal(err)
	}

	// Nothing refused left anything behind.
	if n := len(f.tw.ListBranches(ctx, RootCaller)); n != 3 {
		t.Fatalf("%d branches after refusals, want 3", n)
	}
	want := 1 + 3 // main + branches
	f.tw.mu.Lock()
	want += len(f.tw.snaps)
	f.tw.mu.Unlock()
	if v := f.volumes(); len(v) != want {
		t.Fatalf("volumes %v, want %d", v, want)
	}
}

// --at picks the newest snapshot of main not newer than the time.
func TestAt(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", nil)
	ctx := context.Background()
	now := time.Now().UTC()
	// Back-date snapshots as if taken over the last hours.
	for i, age := range []time.Duration{5 * time.Hour, 3 * time.Hour, time.Hour} {
		f.mainExec("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (" + string(rune('1'+i)) + ")")
		s, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{Name: "h" + string(rune('0'+i))})
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
	// The initial (empty) snapshot is newer than all; drop it from the race.
	f.tw.mu.Lock()
	for _, s := range f.tw.snaps {
		if !strings.HasPrefix(s.ID, "h") {
			_ = f.tw.updateSnapshot(s, func(r *snapshotRecord) { r.CreatedAt = now.Add(-10 * time.Hour) })
		}
	}
	f.tw.mu.Unlock()

	cases := []struct{ at, want string }{
		{"2h", "h1"},
		{"30m", "h2"},
		{"4h", "h0"},
		{now.Add(-150 * time.Minute).Format(time.RFC3339), "h1"},
	}
	for i, c := range cases {
		b := f.create(alice, api.CreateBranchRequest{Name: "at" + string(rune('0'+i)), At: c.at})
		if b.Snapshot != c.want {
			t.Fatalf("--at %s picked %s, want %s", c.at, b.Snapshot, c.want)
		}
	}
	// Its data is that snapshot's.
	conn := dial(t, f.tw.mustURI(t, "at0"))
	wantInts(t, "branch at 2h", ints(t, conn, "SELECT x FROM t ORDER BY x"), 1, 2)
	_, err := f.tw.CreateBranch(ctx, alice, api.CreateBranchRequest{Name: "too-old", At: "48h"})
	wantErr(t, "--at before every snapshot", err, ErrNotFound)
	_, err = f.tw.CreateBranch(ctx, alice, api.CreateBranchRequest{Name: "mixed", At: "1h", Parent: "at0"})
	wantErr(t, "--at with a branch parent", err, ErrInvalid)
	// A snapshot id as parent.
	b := f.create(alice, api.CreateBranchRequest{Name: "by-id", Parent: "h0"})
	if b.Snapshot != "h0" || b.Parent != MainName {
		t.Fatalf("by snapshot id: %+v", b)
	}
}

// mustURI is the branch's URL as its owner sees it (with the password).
func (t *Twin) mustURI(tb testing.TB, name string) string {
	t.mu.Lock()
	rec := t.branches[name]
	t.mu.Unlock()
	if rec == nil {
		tb.Fatalf("no branch %s", name)
	}
	b, err := t.GetBranch(context.Background(), Caller{UID: rec.OwnerUID, User: rec.Owner}, name)
	if err != nil {
		tb.Fatal(err)
	}
	return b.ConnectionURI
}

// Expired branches are deleted by the sweeper; protected ones are not.
func TestTTL(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", func(c *config.Config) { c.Snapshots.Keep = 1 })
	ctx := context.Background()
	e := f.create(alice, api.CreateBranchRequest{Name: "short", TTL: "2s"})
	if e.ExpiresAt == nil || e.ExpiresAt.Sub(e.CreatedAt) != 2*time.Second {
		t.Fatalf("expires_at %v for created %v", e.ExpiresAt, e.CreatedAt)
	}
	f.create(alice, api.CreateBranchRequest{Name: "kept", TTL: "1s", Protect: true})
	f.create(alice, api.CreateBranchRequest{Name: "cleared", TTL: "1s"})
	if b, err := f.tw.UpdateBranch(ctx, alice, "cleared", api.UpdateBranchRequest{TTL: ptr("0")}); err != nil || b.ExpiresAt != nil {
		t.Fatalf("clear ttl: %+v %v", b, err)
	}
	id := f.record("short").ID
	waitFor(t, "expired branch deleted", func() bool {
		_, err := f.tw.GetBranch(ctx, alice, "short")
		return errors.Is(err, ErrNotFound)
	})
	if f.volumes()[id] {
		t.Fatal("expired branch's volume left")
	}
	time.Sleep(500 * time.Millisecond)
	for _, n := range []string{"kept", "cleared"} {
		if _, err := f.tw.GetBranch(ctx, alice, n); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}

	// Retention: with keep = 1, a snapshot no branch uses and not the
	// newest goes.
	s2, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.tw.UpdateBranch(ctx, alice, "kept", api.UpdateBranchRequest{Protected: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if err := f.tw.DeleteBranch(ctx, alice, "cleared"); err != nil {
		t.Fatal(err)
	}
	// "kept", unprotected, expires too.
	waitFor(t, "old snapshot removed once unused", func() bool {
		l := f.tw.ListSnapshots(ctx, alice)
		return len(l) == 1 && l[0].ID == s2.ID
	})
	if l := f.tw.ListBranches(ctx, alice); len(l) != 0 {
		t.Fatalf("branches left: %+v", l)
	}
}
