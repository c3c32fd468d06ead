package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/twin/api"
)

// TestRestoreAt: branches restore NAME --at and create --at with the real
// binary, in dump mode: the newest snapshot not newer than TIME stands in,
// the JSON says so (at, at_exact false), the table and stderr name the
// snapshot, and the URL stays the same.
func TestRestoreAt(t *testing.T) {
	d := startDaemon(t, daemonOpts{Driver: "btrfs"})
	d.mainExec(t, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)")
	s1 := d.snapshot(t)
	time.Sleep(1100 * time.Millisecond)
	t1 := time.Now().UTC().Format(time.RFC3339)
	time.Sleep(1100 * time.Millisecond)
	d.mainExec(t, "INSERT INTO items VALUES (2)")
	d.snapshot(t)

	b := d.create(t, root, "dev/r")
	if n := queryInt(t, b.ConnectionURI, "SELECT count(*) FROM items"); n != 2 {
		t.Fatalf("new branch has %d rows", n)
	}
	r := d.must(root, "branches", "restore", "dev/r", "--at", t1, "-o", "json")
	got := decode[api.Branch](t, r)
	if got.Snapshot != s1.ID || got.ConnectionURI != b.ConnectionURI || got.At == nil || got.At.UTC().Format(time.RFC3339) != t1 ||
		got.AtExact == nil || *got.AtExact {
		t.Fatalf("restore --at %s: %s", t1, r)
	}
	if !strings.Contains(r.stderr, "holds snapshot "+s1.ID) {
		t.Errorf("restore did not say which snapshot stood in: %q", r.stderr)
	}
	if n := queryInt(t, b.ConnectionURI, "SELECT count(*) FROM items"); n != 1 {
		t.Fatalf("restored branch has %d rows, want 1", n)
	}
	if tab := d.must(root, "branches", "get", "dev/r"); !strings.Contains(tab.stdout, "(snapshot "+s1.ID+" stood in)") {
		t.Errorf("table output:\n%s", tab.stdout)
	}
	c := d.must(root, "branches", "create", "dev/at", "--at", t1, "-o", "json")
	if ca := decode[api.Branch](t, c); ca.Snapshot != s1.ID || ca.AtExact == nil || *ca.AtExact || !strings.Contains(c.stderr, "stood in") && !strings.Contains(c.stderr, "holds snapshot") {
		t.Fatalf("create --at: %s", c)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"branches", "restore", "dev/r"}, 2, "needs --at"},
		{[]string{"branches", "restore", "dev/r", "--at", "48h"}, 1, "no snapshot of main was taken at or before"},
		{[]string{"branches", "restore", "dev/r", "--at", "soon"}, 2, "neither an RFC 3339 time"},
		{[]string{"branches", "restore", "nope", "--at", "1h"}, 1, "not found"},
	} {
		if r := d.cli(root, c.args...); r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("want exit %d and %q: %s", c.code, c.want, r)
		}
	}
}
