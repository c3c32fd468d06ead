package e2e

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/twin/api"
)

// checkBranch checks every field of the SPEC's branch shape.
func checkBranch(t *testing.T, d *daemon, b api.Branch, want api.Branch, since time.Time) {
	t.Helper()
	if b.Name != want.Name || b.Parent != want.Parent || b.Owner != want.Owner || b.Protected != want.Protected {
		t.Errorf("branch %s: name/parent/owner/protected = %q/%q/%q/%v, want %q/%q/%q/%v",
			want.Name, b.Name, b.Parent, b.Owner, b.Protected, want.Name, want.Parent, want.Owner, want.Protected)
	}
	if want.Snapshot != "" && b.Snapshot != want.Snapshot {
		t.Errorf("branch %s: snapshot %q, want %q", b.Name, b.Snapshot, want.Snapshot)
	}
	if b.Snapshot == "" {
		t.Errorf("branch %s: snapshot is empty", b.Name)
	}
	if b.State != api.StateReady {
		t.Errorf("branch %s: state %q, want ready", b.Name, b.State)
	}
	if b.CreatedAt.Before(since.Add(-2*time.Second)) || b.CreatedAt.After(time.Now().Add(2*time.Second)) {
		t.Errorf("branch %s: created_at %s, want between %s and now", b.Name, b.CreatedAt, since)
	}
	if (want.ExpiresAt == nil) != (b.ExpiresAt == nil) {
		t.Errorf("branch %s: expires_at %v, want %v", b.Name, b.ExpiresAt, want.ExpiresAt)
	} else if want.ExpiresAt != nil {
		if diff := b.ExpiresAt.Sub(*want.ExpiresAt); diff < -5*time.Second || diff > 5*time.Second {
			t.Errorf("branch %s: expires_at %s, want about %s", b.Name, b.ExpiresAt, want.ExpiresAt)
		}
	}
	if b.Port < d.PortLo || b.Port > d.PortHi {
		t.Errorf("branch %s: port %d outside engine.port_range %d-%d", b.Name, b.Port, d.PortLo, d.PortHi)
	}
	if b.ChangedBytes < 0 {
		t.Errorf("branch %s: changed_bytes %d", b.Name, b.ChangedBytes)
	}
	u, err := url.Parse(b.ConnectionURI)
	if err != nil {
		t.Fatalf("branch %s: connection_uri does not parse: %v", b.Name, err)
	}
	pw, hasPW := u.User.Password()
	if u.Scheme != "postgres" && u.Scheme != "postgresql" || u.Port() != strconv.Itoa(b.Port) || !hasPW || pw == "" || u.User.Username() == "" || len(u.Path) < 2 {
		t.Errorf("branch %s: connection_uri %s: want postgres://USER:PASSWORD@HOST:%d/DB", b.Name, redact(b.ConnectionURI), b.Port)
	}
	if n := queryInt(t, b.ConnectionURI, "SELECT 1"); n != 1 {
		t.Errorf("branch %s: SELECT 1 = %d", b.Name, n)
	}
}

// TestBranchLifecycle drives create, list, get, connection-string, reset,
// protect and delete through the CLI, and checks that writes stay in their
// branch.
func TestBranchLifecycle(t *testing.T) {
	d := startDaemon(t, daemonOpts{Driver: "btrfs"})
	start := time.Now()

	// Made first so its expiry is due by the end; the sweeper deletes it.
	ttl := d.create(t, root, "ttl/short", "--ttl", "2s")
	if ttl.ExpiresAt == nil || ttl.ExpiresAt.Sub(ttl.CreatedAt) > 3*time.Second || ttl.ExpiresAt.Sub(ttl.CreatedAt) < time.Second {
		t.Errorf("ttl/short: expires_at %v for created_at %s and --ttl 2s", ttl.ExpiresAt, ttl.CreatedAt)
	}

	d.mainExec(t, "CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items SELECT g, 'main' FROM generate_series(1, 3) g")
	snap := d.snapshot(t)
	if snap.ID == "" || snap.CreatedAt.Before(start.Add(-2*time.Second)) {
		t.Fatalf("snapshots create: %+v", snap)
	}

	alpha := d.create(t, root, "dev/alpha")
	checkBranch(t, d, alpha, api.Branch{Name: "dev/alpha", Parent: "main", Snapshot: snap.ID, Owner: "root"}, start)
	beta := d.create(t, root, "dev/beta", "--ttl", "1h", "--protect")
	exp := time.Now().Add(time.Hour)
	checkBranch(t, d, beta, api.Branch{Name: "dev/beta", Parent: "main", Snapshot: snap.ID, Owner: "root", Protected: true, ExpiresAt: &exp}, start)
	if alpha.Port == beta.Port || alpha.ConnectionURI == beta.ConnectionURI {
		t.Errorf("two branches share port %d / URL", alpha.Port)
	}
	for _, b := range []api.Branch{alpha, beta} {
		if n := queryInt(t, b.ConnectionURI, "SELECT count(*) FROM items"); n != 3 {
			t.Errorf("%s sees %d rows of main's snapshot, want 3", b.Name, n)
		}
	}

	t.Run("list and get", func(t *testing.T) {
		bs := d.list(t, root)
		for _, want := range []api.Branch{alpha, beta} {
			got, ok := find(bs, want.Name)
			if !ok {
				t.Fatalf("branches list -o json lacks %s: %v", want.Name, names(bs))
			}
			checkBranch(t, d, got, api.Branch{Name: want.Name, Parent: "main", Snapshot: snap.ID, Owner: "root",
				Protected: want.Protected, ExpiresAt: want.ExpiresAt}, start)
			if got.Port != want.Port || got.ConnectionURI != want.ConnectionURI || !got.CreatedAt.Equal(want.CreatedAt) {
				t.Errorf("list shows %s differently from create: %+v vs %+v", want.Name, got, want)
			}
			g := d.get(t, root, want.Name)
			if g.Port != want.Port || g.ConnectionURI != want.ConnectionURI || g.Snapshot != want.Snapshot {
				t.Errorf("get %s differs from create: %+v vs %+v", want.Name, g, want)
			}
		}
		table := d.must(root, "branches", "list").stdout
		for _, s := range []string{"NAME", "dev/alpha", "dev/beta", strconv.Itoa(alpha.Port), "protected"} {
			if !strings.Contains(table, s) {
				t.Errorf("branches list table lacks %q:\n%s", s, table)
			}
		}
		tree := d.must(root, "branch", "list", "--tree").stdout
		if !strings.HasPrefix(tree, "main\n") || !strings.Contains(tree, snap.ID) || !strings.Contains(tree, "── dev/alpha") || !strings.Contains(tree, "── dev/beta") {
			t.Errorf("branches list --tree:\n%s", tree)
		}
		if r := d.must(root, "cs", "dev/alpha"); strings.TrimSpace(r.stdout) != alpha.ConnectionURI {
			t.Errorf("cs dev/alpha printed %q, want the branch URL", redact(r.stdout))
		}
		if r := d.must(root, "connection-string", "dev/alpha", "-o", "env"); r.stdout != "DATABASE_URL="+alpha.ConnectionURI+"\n" {
			t.Errorf("connection-string -o env printed %q", redact(r.stdout))
		}
		if r := d.must(root, "branches", "get", "dev/beta", "-o", "env"); r.stdout != "DATABASE_URL="+beta.ConnectionURI+"\n" {
			t.Errorf("get -o env printed %q", redact(r.stdout))
		}
		// Shell completion offers the caller's branch names.
		comp := d.must(root, "__complete", "branches", "reset", "").stdout
		if !strings.Contains(comp, "dev/alpha\n") || !strings.Contains(comp, "dev/beta\n") {
			t.Errorf("completion of branches reset: %q", comp)
		}
		snaps := decode[[]api.Snapshot](t, d.must(root, "snapshots", "list", "-o", "json"))
		i := slices.IndexFunc(snaps, func(s api.Snapshot) bool { return s.ID == snap.ID })
		if i < 0 || snaps[i].Branches < 2 {
			t.Errorf("snapshots list: %+v; want %s used by at least 2 branches", snaps, snap.ID)
		}
	})

	t.Run("isolation and reset", func(t *testing.T) {
		execURI(t, alpha.ConnectionURI, "INSERT INTO items VALUES (100, 'alpha'); CREATE TABLE alpha_only (x int)")
		if n := queryInt(t, alpha.ConnectionURI, "SELECT count(*) FROM items"); n != 4 {
			t.Errorf("alpha sees %d rows after its insert, want 4", n)
		}
		if n := queryInt(t, beta.ConnectionURI, "SELECT count(*) FROM items WHERE id = 100"); n != 0 {
			t.Errorf("sibling dev/beta sees dev/alpha's row")
		}
		if tableExists(t, beta.ConnectionURI, "alpha_only") {
			t.Errorf("sibling dev/beta sees dev/alpha's table")
		}
		if n := d.mainQueryInt(t, "SELECT count(*) FROM items"); n != 3 {
			t.Errorf("main sees %d rows, want 3 (alpha's write leaked)", n)
		}

		r := d.reset(t, root, "dev/alpha")
		if r.Port != alpha.Port || r.ConnectionURI != alpha.ConnectionURI || r.State != api.StateReady {
			t.Errorf("reset changed port/URL/state: %d %s %s", r.Port, redact(r.ConnectionURI), r.State)
		}
		if n := queryInt(t, alpha.ConnectionURI, "SELECT count(*) FROM items"); n != 3 {
			t.Errorf("after reset, the same URL sees %d rows, want 3", n)
		}
		if tableExists(t, alpha.ConnectionURI, "alpha_only") {
			t.Errorf("after reset, alpha_only still exists")
		}

		// Reset to main's newest snapshot: a write to main, then a snapshot.
		d.mainExec(t, "INSERT INTO items VALUES (4, 'main later')")
		snap2 := d.snapshot(t, "--name", "second")
		r = d.reset(t, root, "dev/alpha")
		if r.Snapshot != snap2.ID {
			t.Errorf("reset of a branch of main: snapshot %q, want the newest %q", r.Snapshot, snap2.ID)
		}
		if n := queryInt(t, alpha.ConnectionURI, "SELECT count(*) FROM items"); n != 4 {
			t.Errorf("after reset to the newest snapshot: %d rows, want 4", n)
		}
		if n := queryInt(t, beta.ConnectionURI, "SELECT count(*) FROM items"); n != 3 {
			t.Errorf("dev/beta moved with the new snapshot: %d rows, want 3 until it is reset", n)
		}
	})

	t.Run("branch of a branch", func(t *testing.T) {
		execURI(t, alpha.ConnectionURI, "INSERT INTO items VALUES (200, 'before child')")
		child := d.create(t, root, "dev/alpha/child", "--parent", "dev/alpha")
		checkBranch(t, d, child, api.Branch{Name: "dev/alpha/child", Parent: "dev/alpha", Owner: "root"}, start)
		execURI(t, alpha.ConnectionURI, "INSERT INTO items VALUES (300, 'after child')")
		if n := queryInt(t, child.ConnectionURI, "SELECT count(*) FROM items WHERE id = 200"); n != 1 {
			t.Errorf("child does not see its parent's write made before it was created")
		}
		if n := queryInt(t, child.ConnectionURI, "SELECT count(*) FROM items WHERE id = 300"); n != 0 {
			t.Errorf("child sees its parent's write made after it was created")
		}
		execURI(t, child.ConnectionURI, "INSERT INTO items VALUES (400, 'child')")
		if n := queryInt(t, alpha.ConnectionURI, "SELECT count(*) FROM items WHERE id = 400"); n != 0 {
			t.Errorf("parent sees its child's write")
		}
		// Reset goes to the parent's current state.
		d.reset(t, root, "dev/alpha/child")
		if n := queryInt(t, child.ConnectionURI, "SELECT count(*) FROM items WHERE id IN (200, 300, 400)"); n != 2 {
			t.Errorf("after reset the child sees %d of rows 200, 300 (parent's) and 400 (its own, gone), want 2", n)
		}

		// A parent with children cannot be deleted; the error names them.
		r := d.cli(root, "branches", "delete", "dev/alpha")
		if r.code != 1 || !strings.Contains(r.stderr, "dev/alpha/child") {
			t.Errorf("deleting a parent: want exit 1 naming dev/alpha/child; %s", r)
		}
		tree := d.must(root, "branches", "list", "--tree").stdout
		if !strings.Contains(tree, "── dev/alpha/child") || strings.Index(tree, "dev/alpha/child") < strings.Index(tree, "dev/alpha ") {
			t.Errorf("--tree should draw dev/alpha/child under dev/alpha:\n%s", tree)
		}
	})

	t.Run("protect", func(t *testing.T) {
		for _, args := range [][]string{{"branches", "reset", "dev/beta"}, {"branches", "delete", "dev/beta"}} {
			r := d.cli(root, args...)
			if r.code != 1 || !strings.Contains(r.stderr, "protect") {
				t.Errorf("%v on a protected branch: want exit 1 saying it is protected; %s", args, r)
			}
		}
		if _, ok := find(d.list(t, root), "dev/beta"); !ok {
			t.Fatalf("protected dev/beta is gone")
		}
		b := decode[api.Branch](t, d.must(root, "branches", "unprotect", "dev/beta", "-o", "json"))
		if b.Protected {
			t.Errorf("unprotect: still protected")
		}
		if b = decode[api.Branch](t, d.must(root, "branches", "protect", "dev/beta", "-o", "json")); !b.Protected {
			t.Errorf("protect: not protected")
		}
		d.must(root, "branches", "unprotect", "dev/beta")
	})

	t.Run("delete", func(t *testing.T) {
		for _, name := range []string{"dev/alpha/child", "dev/alpha", "dev/beta"} {
			d.must(root, "branches", "delete", name)
			r := d.cli(root, "branches", "get", name)
			if r.code != 1 || !strings.Contains(r.stderr, name) {
				t.Errorf("get after delete: want exit 1 naming %s; %s", name, r)
			}
		}
		if _, err := connect(t, alpha.ConnectionURI); err == nil {
			t.Errorf("deleted dev/alpha still accepts connections")
		}
	})

	t.Run("ttl", func(t *testing.T) {
		eventually(t, 75*time.Second, "the sweeper deletes ttl/short (--ttl 2s)", func() bool {
			_, ok := find(d.list(t, root), "ttl/short")
			return !ok
		})
		if _, err := connect(t, ttl.ConnectionURI); err == nil {
			t.Errorf("expired ttl/short still accepts connections")
		}
		if bs := d.list(t, root); len(bs) != 0 {
			t.Errorf("branches left: %v", names(bs))
		}
	})
}

// TestAtPicksSnapshot checks --at: the newest snapshot not newer than the
// time, as RFC 3339 and relative.
func TestAtPicksSnapshot(t *testing.T) {
	d := startDaemon(t, daemonOpts{Driver: "btrfs"})
	d.mainExec(t, "CREATE TABLE gen (v int)")
	var snaps []api.Snapshot
	for v := 1; v <= 3; v++ {
		d.mainExec(t, "INSERT INTO gen VALUES ("+strconv.Itoa(v)+")")
		snaps = append(snaps, d.snapshot(t, "--name", "gen"+strconv.Itoa(v)))
		time.Sleep(1100 * time.Millisecond)
	}
	mid := func(a, b time.Time) string { return a.Add(b.Sub(a) / 2).UTC().Format(time.RFC3339Nano) }
	cases := []struct {
		name, at string
		want     int // index into snaps
	}{
		{"at/exact2", snaps[1].CreatedAt.UTC().Format(time.RFC3339Nano), 1},
		{"at/between1and2", mid(snaps[0].CreatedAt, snaps[1].CreatedAt), 0},
		{"at/between2and3", mid(snaps[1].CreatedAt, snaps[2].CreatedAt), 1},
		{"at/future", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), 2},
		{"at/relative", "0s", 2},
	}
	for _, c := range cases {
		b := d.create(t, root, c.name, "--at", c.at)
		if b.Snapshot != snaps[c.want].ID {
			t.Errorf("--at %s: snapshot %s, want %s", c.at, b.Snapshot, snaps[c.want].ID)
		}
		if n := queryInt(t, b.ConnectionURI, "SELECT max(v) FROM gen"); n != int64(c.want+1) {
			t.Errorf("--at %s: the branch sees generation %d, want %d", c.at, n, c.want+1)
		}
	}
	before := d.list(t, root)
	for _, at := range []string{snaps[0].CreatedAt.Add(-time.Hour).UTC().Format(time.RFC3339), "2h"} {
		r := d.cli(root, "branches", "create", "at/too-old", "--at", at)
		if r.code != 1 || r.stderr == "" {
			t.Errorf("--at %s (older than every snapshot): want exit 1 with a message; %s", at, r)
		}
	}
	r := d.cli(root, "branches", "create", "at/garbage", "--at", "yesterday-ish")
	if r.code != 2 || !strings.Contains(r.stderr, "yesterday-ish") {
		t.Errorf("--at garbage: want exit 2 naming the value; %s", r)
	}
	if after := d.list(t, root); len(after) != len(before) {
		t.Errorf("failed creates changed the list: %v -> %v", names(before), names(after))
	}
}
