package e2e

import (
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/twin/api"
)

// TestBranchDiff: pgtwin branches diff with the real binary: nothing and
// exit 0 on a fresh branch; the unified diff of a migration, --exit-code,
// -o json, OTHER as main or a branch, a suspended branch, names ending in
// "/diff", and another user's branch.
func TestBranchDiff(t *testing.T) {
	d := startDaemon(t, daemonOpts{Driver: "btrfs"})
	other := ensureUser(t, "pgtwinci1", socketGroup)
	d.mainExec(t, `CREATE TABLE users (id int PRIMARY KEY, email text);
		CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 41'`)
	d.snapshot(t)
	b := d.create(t, root, "mig/pr-1")
	d.create(t, root, "mig/pr-1/diff") // a name the diff route must not swallow

	for _, args := range [][]string{{"mig/pr-1"}, {"mig/pr-1", "--exit-code"}, {"mig/pr-1", "main"}, {"mig/pr-1", "mig/pr-1/diff", "--exit-code"}} {
		r := d.must(root, append([]string{"branches", "diff"}, args...)...)
		if r.stdout != "" || r.stderr != "" {
			t.Fatalf("fresh branch: %s", r)
		}
	}
	if r := d.must(root, "branches", "diff", "mig/pr-1", "-o", "json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("fresh branch -o json: %s", r)
	}
	if g := d.get(t, root, "mig/pr-1/diff"); g.Name != "mig/pr-1/diff" {
		t.Fatalf("get of a branch named .../diff: %+v", g)
	}

	execURI(t, b.ConnectionURI, `ALTER TABLE users ADD COLUMN nickname text;
		CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42'`)
	d.must(root, "branches", "suspend", "mig/pr-1")
	r := d.must(root, "branches", "diff", "mig/pr-1")
	for _, want := range []string{"diff --git a/s-", " b/mig/pr-1\n", "\n+    nickname text\n", "\n-    AS $$SELECT 41$$;\n", "@@ -"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("diff lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Error("colour on a pipe")
	}
	if c := d.cli(root, "branches", "diff", "mig/pr-1", "--exit-code"); c.code != 1 || c.stdout != r.stdout || c.stderr != "" {
		t.Errorf("--exit-code on a difference: %s", c)
	}
	if c := d.must(root, "branches", "diff", "mig/pr-1", "--color", "always"); !strings.Contains(c.stdout, "\x1b[32m+    nickname text\x1b[m") {
		t.Errorf("--color always:\n%q", c.stdout)
	}
	changes := decode[[]api.SchemaChange](t, d.must(root, "branches", "diff", "mig/pr-1", "-o", "json"))
	got := map[string]string{}
	for _, c := range changes {
		got[c.Type+" "+c.Name] = c.Change
	}
	if len(got) != 2 || got["TABLE users"] != "changed" || got["FUNCTION answer()"] != "changed" {
		t.Errorf("-o json: %v", got)
	}
	// OTHER: the sibling holds the old schema; compared the other way.
	if c := d.must(root, "branches", "diff", "mig/pr-1/diff", "mig/pr-1"); !strings.Contains(c.stdout, "\n-    nickname text\n") {
		t.Errorf("diff of the sibling against mig/pr-1:\n%s", c.stdout)
	}
	for _, c := range []struct {
		u    osUser
		args []string
		want string
	}{
		{other, []string{"branches", "diff", "mig/pr-1"}, "not found"},
		{root, []string{"branches", "diff", "mig/pr-1", "nope"}, "neither main"},
		{root, []string{"branches", "diff", "nope"}, "not found"},
	} {
		if r := d.cli(c.u, c.args...); r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("as %s: want exit 1 and %q: %s", c.u.Name, c.want, r)
		}
	}
}
