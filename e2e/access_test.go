package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/twin/api"
)

// TestTwoUsers: each OS user sees and changes only their own branches; root
// sees and changes all; one user's password opens no other user's branch.
func TestTwoUsers(t *testing.T) {
	d := startDaemon(t, daemonOpts{Driver: "btrfs"})
	alice := ensureUser(t, "e2ealice", socketGroup)
	bob := ensureUser(t, "e2ebob", socketGroup)
	d.mainExec(t, "CREATE TABLE shared (id int); INSERT INTO shared VALUES (1)")
	d.snapshot(t)

	if st := decode[api.Status](t, d.must(alice, "status", "-o", "json")); st.CallerUser != "e2ealice" || st.CallerIsAdmin {
		t.Errorf("status as alice: caller %q admin %v, want e2ealice and not admin", st.CallerUser, st.CallerIsAdmin)
	}
	a := d.create(t, alice, "alice/work")
	b := d.create(t, bob, "bob/work")
	if a.Owner != "e2ealice" || b.Owner != "e2ebob" {
		t.Fatalf("owners: %q and %q, want e2ealice and e2ebob (from the socket's peer credentials)", a.Owner, b.Owner)
	}
	for _, br := range []struct{ uri, user string }{{a.ConnectionURI, "e2ealice"}, {b.ConnectionURI, "e2ebob"}} {
		u, _ := url.Parse(br.uri)
		if u.User.Username() != br.user {
			t.Errorf("branch role %q, want one named after its owner %q", u.User.Username(), br.user)
		}
		if n := queryInt(t, br.uri, "SELECT count(*) FROM shared"); n != 1 {
			t.Errorf("%s: owner's role cannot read main's data", br.user)
		}
		// The branch role owns its data but is no superuser: a superuser
		// could run programs as the postgres OS user.
		if n := queryInt(t, br.uri, "SELECT count(*) FROM pg_roles WHERE rolname = current_user AND rolsuper"); n != 0 {
			t.Errorf("%s's branch role is a superuser", br.user)
		}
		execURI(t, br.uri, "INSERT INTO shared VALUES (2); CREATE TABLE mine (x int)")
	}

	type other struct {
		who    osUser
		theirs string
		mine   string
	}
	for _, o := range []other{{alice, "bob/work", "alice/work"}, {bob, "alice/work", "bob/work"}} {
		bs := d.list(t, o.who)
		if len(bs) != 1 || bs[0].Name != o.mine {
			t.Errorf("%s lists %v, want only %s", o.who.Name, names(bs), o.mine)
		}
		tree := d.must(o.who, "branches", "list", "--tree").stdout
		if strings.Contains(tree, o.theirs) {
			t.Errorf("%s's --tree shows %s:\n%s", o.who.Name, o.theirs, tree)
		}
		for _, args := range [][]string{
			{"branches", "get", o.theirs},
			{"connection-string", o.theirs},
			{"branches", "reset", o.theirs},
			{"branches", "delete", o.theirs},
			{"branches", "protect", o.theirs},
			{"branches", "create", o.mine + "-child", "--parent", o.theirs},
		} {
			r := d.cli(o.who, args...)
			if r.code != 1 {
				t.Errorf("%s: %v on another user's branch: want exit 1; %s", o.who.Name, args, r)
			}
			// The answer must not leak the URL, the password or the port.
			other := a
			if o.theirs == "bob/work" {
				other = b
			}
			pw, _ := url.Parse(other.ConnectionURI)
			secret, _ := pw.User.Password()
			if strings.Contains(r.stdout+r.stderr, secret) || strings.Contains(r.stdout+r.stderr, fmt.Sprint(other.Port)) {
				t.Errorf("%s: %v leaks the other branch's password or port: %s", o.who.Name, args, r)
			}
		}
		// Same name, other owner: not "already exists" of someone else's.
		r := d.cli(o.who, "branches", "create", o.theirs)
		if r.code == 0 {
			t.Errorf("%s could create a branch named like another user's %s", o.who.Name, o.theirs)
		}
	}

	// The other user's branch is untouched.
	for _, br := range []string{a.ConnectionURI, b.ConnectionURI} {
		if n := queryInt(t, br, "SELECT count(*) FROM shared"); n != 2 {
			t.Errorf("a branch was reset by the other user: %d rows, want 2", n)
		}
	}

	// Over TCP, alice's password does not open bob's branch (as alice's
	// role or as bob's), nor bob's alice's.
	cross := func(from, to string) {
		fu, _ := url.Parse(from)
		tu, _ := url.Parse(to)
		pw, _ := fu.User.Password()
		for _, user := range []string{fu.User.Username(), tu.User.Username()} {
			x := *tu
			x.User = url.UserPassword(user, pw)
			if conn, err := connect(t, x.String()); err == nil {
				conn.Close(t.Context())
				t.Errorf("%s's password opens %s's branch as role %s", fu.User.Username(), tu.User.Username(), user)
			}
		}
	}
	cross(a.ConnectionURI, b.ConnectionURI)
	cross(b.ConnectionURI, a.ConnectionURI)

	// root sees, reads and changes everything.
	if bs := d.list(t, root); len(bs) != 2 {
		t.Errorf("root lists %v, want both", names(bs))
	}
	// Without the owner's password (TestAuthz checks the redaction).
	if got := d.get(t, root, "alice/work"); got.ConnectionURI != withoutPassword(t, a.ConnectionURI) {
		t.Errorf("root's view of alice/work has another URL")
	}
	if r := d.must(root, "cs", "bob/work"); strings.TrimSpace(r.stdout) != withoutPassword(t, b.ConnectionURI) {
		t.Errorf("root's cs bob/work: %q", redact(r.stdout))
	}
	d.reset(t, root, "alice/work")
	if n := queryInt(t, a.ConnectionURI, "SELECT count(*) FROM shared"); n != 1 {
		t.Errorf("root's reset of alice/work did not take: %d rows", n)
	}
	d.must(root, "branches", "delete", "bob/work")

	// A member of the admin group is an admin too.
	admin := ensureUser(t, "e2eadmin", socketGroup, adminGroup)
	if bs := d.list(t, admin); len(bs) != 1 || bs[0].Name != "alice/work" {
		t.Errorf("admin-group member lists %v, want alice/work", names(bs))
	}
	d.must(admin, "branches", "delete", "alice/work")

	// Someone outside the socket group cannot even connect.
	eve := ensureUser(t, "e2eeve")
	r := d.cli(eve, "branches", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("a user outside the socket group: want exit 1 and permission denied; %s", r)
	}
}
