package twin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/twin/api"
)

// A branch of a branch sees what its parent had when it was made, not what
// the parent does afterwards; the parent keeps running throughout.
func TestBranchOfBranch(t *testing.T) {
	t.Parallel()
	for _, drv := range []string{"btrfs", "copy"} {
		t.Run(drv, func(t *testing.T) {
			f := newFx(t, drv, nil)
			ctx := context.Background()
			f.mainExec("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
			if _, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{}); err != nil {
				t.Fatal(err)
			}
			p := f.create(alice, api.CreateBranchRequest{Name: "feature"})
			cp := dial(t, p.ConnectionURI)
			exec(t, cp, "INSERT INTO t VALUES (2)")

			c := f.create(alice, api.CreateBranchRequest{Name: "feature/child", Parent: "feature"})
			if c.Parent != "feature" || c.Snapshot == p.Snapshot {
				t.Fatalf("child: %+v", c)
			}
			// The parent's connection survived the snapshot.
			exec(t, cp, "INSERT INTO t VALUES (3)")
			cc := dial(t, c.ConnectionURI)
			wantInts(t, "child", ints(t, cc, "SELECT x FROM t ORDER BY x"), 1, 2)
			wantInts(t, "parent", ints(t, cp, "SELECT x FROM t ORDER BY x"), 1, 2, 3)
			exec(t, cc, "INSERT INTO t VALUES (4)")
			wantInts(t, "parent after child's write", ints(t, cp, "SELECT x FROM t ORDER BY x"), 1, 2, 3)

			// Deleting the parent names its child.
			err := f.tw.DeleteBranch(ctx, alice, "feature")
			wantErr(t, "delete parent", err, ErrConflict)
			if !strings.Contains(err.Error(), "feature/child") {
				t.Fatalf("refusal does not name the child: %v", err)
			}

			// Resetting the child takes the parent's current state.
			cc.Close(ctx)
			r, err := f.tw.ResetBranch(ctx, alice, "feature/child")
			if err != nil {
				t.Fatal(err)
			}
			if r.Port != c.Port || r.ConnectionURI != c.ConnectionURI || r.Snapshot == c.Snapshot {
				t.Fatalf("reset child: %+v, was %+v", r, c)
			}
			cc = dial(t, c.ConnectionURI)
			wantInts(t, "child after reset", ints(t, cc, "SELECT x FROM t ORDER BY x"), 1, 2, 3)

			// The child's first snapshot is no longer used: the sweeper
			// removes it; the current one stays.
			waitFor(t, "old branch snapshot removed", func() bool {
				f.tw.mu.Lock()
				defer f.tw.mu.Unlock()
				return f.tw.snaps[c.Snapshot] == nil && f.tw.snaps[r.Snapshot] != nil
			})
			// A branch's snapshots are not shown to others.
			for _, s := range f.tw.ListSnapshots(ctx, bob) {
				if s.ID == r.Snapshot {
					t.Fatalf("bob sees alice's branch snapshot %s", s.ID)
				}
			}

			cc.Close(ctx)
			if err := f.tw.DeleteBranch(ctx, alice, "feature/child"); err != nil {
				t.Fatal(err)
			}
			cp.Close(ctx)
			if err := f.tw.DeleteBranch(ctx, alice, "feature"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "branch snapshots removed", func() bool {
				f.tw.mu.Lock()
				defer f.tw.mu.Unlock()
				for _, s := range f.tw.snaps {
					if s.Origin != MainName {
						return false
					}
				}
				return true
			})
		})
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A branch whose postmaster dies is restarted by the sweeper on its port.
func TestRevive(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", nil)
	ctx := context.Background()
	b := f.create(alice, api.CreateBranchRequest{Name: "crashy"})
	id := f.record("crashy").ID
	if err := f.eng.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "branch restarted and its URL working", func() bool {
		c, err := pgx.Connect(ctx, b.ConnectionURI)
		if err != nil {
			return false
		}
		c.Close(ctx)
		return true
	})
	if st := f.tw.Status(ctx, alice); st.Running != 1 || st.Branches != 1 {
		t.Fatalf("status counts %+v", st)
	}
}
