package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/engine/enginetest"
	"github.com/pgtwin/pgtwin/twin/api"
)

// syncGroup is sync.allow_group in TestAuthz.
const syncGroup = "pgtwine2esync"

// TestAuthz: what SPEC says about authorisation, with real OS users on one
// daemon that syncs from a real source: who may start a sync, passwords for
// owners only, the per-user quota, names that read as options, and the
// pool warning in pgtwin status.
func TestAuthz(t *testing.T) {
	src := startShop(t, 20)
	extra := syncConfig(t, src, filepath.Join(t.TempDir(), "mask.key"), syncOpts{})
	extra = strings.Replace(extra, "[sync]\n", "[sync]\nallow_group = \""+syncGroup+"\"\n", 1)
	ensureGroup(t, syncGroup)
	d := startDaemon(t, daemonOpts{Driver: "btrfs", Branches: "max_per_user = 2\n", Extra: extra})
	alice := ensureUser(t, "e2ealice", socketGroup)
	syncer := ensureUser(t, "e2esyncer", socketGroup, syncGroup)
	admin := ensureUser(t, "e2eadmin", socketGroup, adminGroup)

	// Sync: admins and sync.allow_group start it; everyone may look.
	for _, args := range [][]string{{"sync", "now"}, {"sync", "now", "--resync"}} {
		r := d.cli(alice, args...)
		if r.code != 1 {
			t.Errorf("alice: %v: exit %d, want 1; %s", args, r.code, r)
		}
		checkOneSentence(t, "alice "+strings.Join(args, " "), r, "sync.allow_group", syncGroup, "admin")
		t.Logf("alice: %v: %s", args, strings.TrimSpace(r.stderr))
	}
	d.must(alice, "sync", "status")
	d.must(alice, "mask", "plan")
	if r := d.must(syncer, "sync", "now", "--wait"); !strings.Contains(r.stdout, "sync finished") {
		t.Fatalf("a member of sync.allow_group: sync now --wait did not finish:\n%s", r)
	}

	// Passwords: the owner's URL has one; nobody else's view of it does.
	a := d.create(t, alice, "alice/work")
	pw := uriPassword(t, a.ConnectionURI)
	if pw == "" {
		t.Fatalf("the owner's URL has no password: %s", redact(a.ConnectionURI))
	}
	bare := withoutPassword(t, a.ConnectionURI)
	if !strings.HasPrefix(bare, "postgres://e2ealice@") {
		t.Fatalf("URL without password: %s", bare)
	}
	for _, u := range []osUser{root, admin} {
		if got := d.get(t, u, "alice/work"); got.ConnectionURI != bare {
			t.Errorf("%s gets alice/work with URL %s, want %s", u.Name, redact(got.ConnectionURI), bare)
		}
		if got, _ := find(d.list(t, u), "alice/work"); got.ConnectionURI != bare {
			t.Errorf("%s lists alice/work with URL %s, want %s", u.Name, redact(got.ConnectionURI), bare)
		}
		r := d.must(u, "cs", "alice/work")
		if r.stdout != bare+"\n" || !strings.Contains(r.stderr, "owner") {
			t.Errorf("%s: cs alice/work: stdout %q, stderr %q; want the URL without password and a note on stderr", u.Name, redact(r.stdout), r.stderr)
		}
		if r := d.must(u, "cs", "alice/work", "-o", "env"); r.stdout != "DATABASE_URL="+bare+"\n" {
			t.Errorf("%s: cs -o env: %q, want DATABASE_URL without password", u.Name, redact(r.stdout))
		}
		if strings.Contains(d.must(u, "branches", "get", "alice/work").stdout, pw) {
			t.Errorf("%s: branches get shows alice's password", u.Name)
		}
	}
	if got := d.reset(t, root, "alice/work"); got.ConnectionURI != bare {
		t.Errorf("root's reset answers URL %s, want %s", redact(got.ConnectionURI), bare)
	}
	if conn, err := connect(t, bare); err == nil {
		conn.Close(t.Context())
		t.Errorf("the URL without password opens alice's branch")
	}
	if n := queryInt(t, a.ConnectionURI, "SELECT 1"); n != 1 {
		t.Errorf("alice's own URL after root's reset: %d", n)
	}
	if r := d.must(alice, "cs", "alice/work"); r.stdout != a.ConnectionURI+"\n" || r.stderr != "" {
		t.Errorf("alice: cs alice/work: stdout %q, stderr %q; want her URL with its password", redact(r.stdout), r.stderr)
	}
	if r := d.must(alice, "cs", "alice/work", "-o", "env"); r.stdout != "DATABASE_URL="+a.ConnectionURI+"\n" {
		t.Errorf("alice: cs -o env: %q", redact(r.stdout))
	}
	if got := d.create(t, root, "root/own"); uriPassword(t, got.ConnectionURI) == "" {
		t.Errorf("root's own branch has no password: %s", got.ConnectionURI)
	}

	// Names that read as options are refused by the daemon.
	for _, n := range []string{"-rf", "dev/-x"} {
		r := d.cli(alice, "branches", "create", "--", n)
		if r.code != 2 {
			t.Errorf("branches create -- %s: exit %d, want 2; %s", n, r.code, r)
		}
		checkOneSentence(t, "create "+n, r, n, "'-'")
	}

	// Quota: alice holds alice/work; one more fits, the third does not.
	d.create(t, alice, "alice/two")
	r := d.cli(alice, "branches", "create", "alice/three")
	if r.code != 1 {
		t.Errorf("alice's third branch with max_per_user = 2: exit %d, want 1; %s", r.code, r)
	}
	checkOneSentence(t, "quota", r, "branches.max_per_user", "delete")
	t.Logf("quota: %s", strings.TrimSpace(r.stderr))
	// Admins are bounded by max_branches only.
	d.create(t, admin, "adm/1")
	d.create(t, admin, "adm/2")
	d.create(t, admin, "adm/3")
	if bs := d.list(t, alice); len(bs) != 2 {
		t.Errorf("alice lists %v, want her two branches", names(bs))
	}

	// A pool nearly full is a warning in pgtwin status.
	if r := d.must(alice, "status"); strings.Contains(r.stdout, "Warning") {
		t.Fatalf("status warns on a fresh pool:\n%s", r.stdout)
	}
	filler := enginetest.Fill(t, filepath.Dir(d.DataDir), 150<<20) // the loop mount
	r = d.must(alice, "status")
	if !strings.Contains(r.stdout, "Warning:") || !strings.Contains(r.stdout, "nearly full") {
		t.Errorf("status with the pool nearly full does not warn:\n%s", r.stdout)
	}
	if st := decode[api.Status](t, d.must(root, "status", "-o", "json")); len(st.Warnings) != 1 || st.Pool == nil || st.Pool.FreeBytes >= 512<<20 {
		t.Errorf("status -o json with the pool nearly full: warnings %q, pool %+v", st.Warnings, st.Pool)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the warning gone once space is freed", func() bool {
		return !strings.Contains(d.must(alice, "status").stdout, "Warning")
	})
}

// TestServeRefusesBadConfig: the values only the packages that use them can
// judge are checked before the daemon creates anything, and each error names
// the file and the key.
func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "never", "data")
	sock := filepath.Join(dir, "never.sock")
	head := "[daemon]\nsocket = \"" + sock + "\"\ndata_dir = \"" + dataDir + "\"\n"
	cases := []struct{ name, body, key, what string }{
		{"schedule.toml", "[sync]\nschedule = \"61 * * * *\"\n", "sync.schedule", "61"},
		{"transform.toml", "[anonymize.columns]\n\"public.users.email\" = { transform = \"emial\" }\n", `anonymize.columns."public.users.email"`, "emial"},
		{"runas-root.toml", "[engine]\nrun_as = \"root\"\n", "engine.run_as", "root"},
		{"runas-name.toml", "[engine]\nrun_as = \"no body\"\n", "engine.run_as", "no body"},
		{"runas-missing.toml", "[engine]\nrun_as = \"e2e-no-such-user\"\n", "engine.run_as", "e2e-no-such-user"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, []byte(head+c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runCLI(root, "serve", "--config", p)
		if r.code == 0 {
			t.Errorf("serve with %s: exit 0", c.name)
		}
		checkOneSentence(t, c.name, r, "config "+p, c.key, c.what)
		t.Logf("%s: %s", c.name, strings.TrimSpace(r.stderr))
		if _, err := os.Stat(filepath.Dir(dataDir)); err == nil {
			t.Fatalf("serve with %s created %s before refusing the config", c.name, filepath.Dir(dataDir))
		}
		if _, err := os.Stat(sock); err == nil {
			t.Fatalf("serve with %s made its socket", c.name)
		}
	}
}

func uriPassword(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil || u.User == nil {
		t.Fatalf("URL %q: %v", redact(uri), err)
	}
	pw, _ := u.User.Password()
	return pw
}

// withoutPassword is uri as someone other than its owner is shown it.
func withoutPassword(t *testing.T, uri string) string {
	t.Helper()
	pw := uriPassword(t, uri)
	return strings.Replace(uri, ":"+pw+"@", "@", 1)
}
