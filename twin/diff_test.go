package twin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/twin/api"
)

// TestSchemaDiff: a fresh branch has no diff; then an added table, column
// and index, a changed function and a dropped constraint each show, as
// unified diff lines and one entry per object; against main, a sibling
// branch and a snapshot id too. Ownership never shows.
func TestSchemaDiff(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", nil)
	ctx := context.Background()
	f.mainExec(`CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
		ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
		CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 41';
		INSERT INTO users VALUES (1, 'a@example.com')`)
	snap, err := f.tw.TakeSnapshot(ctx, SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := f.create(alice, api.CreateBranchRequest{Name: "dev/a"})
	f.create(alice, api.CreateBranchRequest{Name: "dev/b"})

	for _, other := range []string{"", MainName, "dev/b", snap.ID} {
		d, err := f.tw.DiffBranch(ctx, alice, "dev/a", other)
		if err != nil {
			t.Fatalf("diff against %q: %v", other, err)
		}
		if d.Diff != "" || len(d.Changes) != 0 {
			t.Fatalf("fresh branch against %q differs:\n%s", other, d.Diff)
		}
	}

	c := dial(t, a.ConnectionURI)
	exec(t, c, `CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users)`)
	exec(t, c, `ALTER TABLE users ADD COLUMN nickname text`)
	exec(t, c, `CREATE INDEX users_nickname_idx ON users (nickname)`)
	exec(t, c, `CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42'`)
	exec(t, c, `ALTER TABLE users DROP CONSTRAINT users_email_key`)

	d, err := f.tw.DiffBranch(ctx, alice, "dev/a", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("diff:\n%s", d.Diff)
	if d.From != snap.ID || d.To != "dev/a" || !strings.HasPrefix(d.Diff, "diff --git a/"+snap.ID+" b/dev/a\n--- a/"+snap.ID+"\n+++ b/dev/a\n@@ ") {
		t.Fatalf("header: from %q to %q, diff starts %q", d.From, d.To, d.Diff[:min(len(d.Diff), 80)])
	}
	for _, want := range []string{
		"+CREATE TABLE public.orders (", "+    nickname text", "+CREATE INDEX users_nickname_idx ON public.users USING btree (nickname);",
		"-    AS $$SELECT 41$$;", "+    AS $$SELECT 42$$;", "-    ADD CONSTRAINT users_email_key UNIQUE (email);",
	} {
		if !strings.Contains(d.Diff, "\n"+want+"\n") {
			t.Errorf("diff lacks the line %q", want)
		}
	}
	for _, noise := range []string{"Owner:", "OWNER TO", "alice", "pgtwin_owner", "GRANT", "SET ", "restrict"} {
		if strings.Contains(d.Diff, noise) {
			t.Errorf("diff shows %q (ownership or session noise)", noise)
		}
	}
	got := map[string]string{}
	for _, ch := range d.Changes {
		got[ch.Type+" "+ch.Schema+"."+ch.Name] = ch.Change
		if ch.Diff == "" || !strings.HasPrefix(ch.Diff, "@@ ") {
			t.Errorf("change %+v has no hunk", ch)
		}
	}
	want := map[string]string{
		"TABLE public.orders": "added", "TABLE public.users": "changed", "INDEX public.users_nickname_idx": "added",
		"FUNCTION public.answer()": "changed", "CONSTRAINT public.users users_email_key": "removed",
		"CONSTRAINT public.orders orders_pkey": "added", "FK CONSTRAINT public.orders orders_user_id_fkey": "added",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("change of %s: %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("changes %v, want exactly %v", got, want)
	}

	// Against a branch: the other side is "-".
	if d, err := f.tw.DiffBranch(ctx, alice, "dev/b", "dev/a"); err != nil || !strings.Contains(d.Diff, "\n-CREATE TABLE public.orders (\n") {
		t.Fatalf("dev/b against dev/a: %v\n%s", err, d.Diff)
	}
	_, err = f.tw.DiffBranch(ctx, alice, "dev/a", "nope")
	wantErr(t, "diff against nothing", err, ErrNotFound)
	_, err = f.tw.DiffBranch(ctx, bob, "dev/a", "")
	wantErr(t, "diff of another user's branch", err, ErrNotFound)
	_, err = f.tw.DiffBranch(ctx, bob, "dev/x", "dev/a")
	wantErr(t, "diff of no branch", err, ErrNotFound)
	if vols := f.volumes(); len(vols) != 2+len(f.tw.ListSnapshots(ctx, RootCaller))+1 {
		t.Logf("volumes after the diffs: %v", vols)
	}
	for v := range f.volumes() {
		if strings.HasPrefix(v, "b-diff-") {
			t.Errorf("the diff left its clone %s", v)
		}
	}
}

func TestParseDump(t *testing.T) {
	dump := `--
-- PostgreSQL database dump
--

\restrict abc123

-- Dumped from database version 15.14
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: f(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.f(x integer) RETURNS integer
    LANGUAGE sql
    AS $$SELECT x$$;


SET default_tablespace = '';

--
-- Name: t; Type: TABLE; Schema: public; Owner: alice
--

CREATE TABLE public.t (
    a integer
);

--
-- PostgreSQL database dump complete
--

\unrestrict abc123
`
	objs := parseDump(dump)
	if len(objs) != 2 || objs[0].label() != "FUNCTION public.f(integer)" || objs[1].label() != "TABLE public.t" {
		t.Fatalf("objects: %+v", objs)
	}
	if got := strings.Join(objs[1].lines, "\n"); got != "-- Name: t; Type: TABLE; Schema: public\nCREATE TABLE public.t (\n    a integer\n);\n" {
		t.Fatalf("table text %q", got)
	}
	if d := schemaDiff("x", "y", dump, strings.ReplaceAll(dump, "abc123", "zzz")); d.Diff != "" {
		t.Fatalf("dumps differing only in their restrict key differ:\n%s", d.Diff)
	}
}

// TestDiffTarget: GET /v1/branches/{name...} is a diff when the name came
// escaped (no literal slash) before a literal "/diff", as the client sends
// it, or else when no branch the caller sees has the whole name.
func TestDiffTarget(t *testing.T) {
	tw := &Twin{branches: map[string]*branchRecord{
		"x/diff": {Name: "x/diff", OwnerUID: alice.UID},
		"x":      {Name: "x", OwnerUID: alice.UID},
	}}
	for _, c := range []struct {
		path, name string // name: the wildcard as the mux decodes it
		diff       string // "" for a plain get
	}{
		{"/v1/branches/x/diff", "x/diff", "x"},  // the client's diff of x
		{"/v1/branches/x%2Fdiff", "x/diff", ""}, // the branch x/diff, as the client sends it
		{"/v1/branches/x%2Fdiff/diff", "x/diff/diff", "x/diff"},
		{"/v1/branches/x/diff/diff", "x/diff/diff", "x/diff"}, // unescaped slashes: no branch x/diff/diff
		{"/v1/branches/a/b/diff", "a/b/diff", "a/b"},
		{"/v1/branches/dev%2Fa/diff", "dev/a/diff", "dev/a"},
		{"/v1/branches/x", "x", ""},
	} {
		r := httptest.NewRequest(http.MethodGet, c.path, nil)
		r.SetPathValue("name", c.name)
		name, ok := tw.diffTarget(r, alice)
		if (c.diff != "") != ok || name != c.diff {
			t.Errorf("%s: diff %v of %q, want %q", c.path, ok, name, c.diff)
		}
	}
	// Unescaped: alice's branch x/y/diff is hers to get; bob, who does not
	// see it, asks for a diff of x/y.
	tw.branches["x/y/diff"] = &branchRecord{Name: "x/y/diff", OwnerUID: alice.UID}
	for _, c := range []struct {
		who  Caller
		diff bool
	}{{alice, false}, {bob, true}} {
		r := httptest.NewRequest(http.MethodGet, "/v1/branches/x/y/diff", nil)
		r.SetPathValue("name", "x/y/diff")
		if name, ok := tw.diffTarget(r, c.who); ok != c.diff || (ok && name != "x/y") {
			t.Errorf("%s: diff %v of %q", c.who.User, ok, name)
		}
	}
}
