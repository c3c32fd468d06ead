package twin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/engine/enginetest"
	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/twin/api"
)

// What SPEC says about authorisation, on one twin: passwords for owners
// only, the per-user quota, who may start a sync, one JSON value per body,
// and the pool warning in status.
func TestAuthzRules(t *testing.T) {
	t.Parallel()
	grp, err := user.LookupGroup("postgres")
	if err != nil {
		t.Fatalf("the postgres group is needed as sync.allow_group (install postgresql): %v", err)
	}
	syncGID, _ := strconv.Atoi(grp.Gid)
	f := newFx(t, "btrfs", func(c *config.Config) {
		c.Branches.MaxPerUser = 2
		c.Sync.AllowGroup = grp.Name
	})
	ctx := context.Background()
	admin := Caller{UID: 41003, User: "adm", Admin: true}

	t.Run("password for the owner only", func(t *testing.T) {
		a := f.create(alice, api.CreateBranchRequest{Name: "pw/a"})
		pw := password(t, a.ConnectionURI)
		if pw == "" {
			t.Fatalf("the owner's URL has no password: %s", a.ConnectionURI)
		}
		bare := strings.Replace(a.ConnectionURI, ":"+pw+"@", "@", 1)
		if !strings.HasPrefix(bare, "postgres://alice@127.0.0.1:") {
			t.Fatalf("URL without password: %s", bare)
		}
		for _, c := range []Caller{RootCaller, admin} {
			g, err := f.tw.GetBranch(ctx, c, "pw/a")
			if err != nil || g.ConnectionURI != bare {
				t.Errorf("%s gets %q (%v), want %q", c.User, g.ConnectionURI, err, bare)
			}
			l, _ := find(f.tw.ListBranches(ctx, c), "pw/a")
			if l.ConnectionURI != bare {
				t.Errorf("%s lists %q, want %q", c.User, l.ConnectionURI, bare)
			}
		}
		r, err := f.tw.ResetBranch(ctx, admin, "pw/a")
		if err != nil || r.ConnectionURI != bare {
			t.Errorf("admin's reset answers %q (%v), want %q", r.ConnectionURI, err, bare)
		}
		u, err := f.tw.UpdateBranch(ctx, RootCaller, "pw/a", api.UpdateBranchRequest{TTL: ptr("1h")})
		if err != nil || u.ConnectionURI != bare {
			t.Errorf("root's update answers %q (%v), want %q", u.ConnectionURI, err, bare)
		}
		// The owner still gets, and can use, the same URL.
		g, err := f.tw.GetBranch(ctx, alice, "pw/a")
		if err != nil || g.ConnectionURI != a.ConnectionURI {
			t.Fatalf("alice gets %q (%v), want her URL", g.ConnectionURI, err)
		}
		wantInts(t, "owner's URL after an admin's reset", ints(t, dial(t, g.ConnectionURI), "SELECT 1"), 1)
		// Root's own branch: root is its owner.
		rb := f.create(RootCaller, api.CreateBranchRequest{Name: "pw/root", Parent: "pw/a"})
		if password(t, rb.ConnectionURI) == "" {
			t.Errorf("root's own branch has no password in its URL: %s", rb.ConnectionURI)
		}
	})

	t.Run("per-user quota", func(t *testing.T) {
		// alice holds pw/a: one more fits.
		f.create(alice, api.CreateBranchRequest{Name: "q/a2"})
		_, err := f.tw.CreateBranch(ctx, alice, api.CreateBranchRequest{Name: "q/a3"})
		wantErr(t, "alice's third branch", err, ErrLimit)
		if msg := err.Error(); !strings.Contains(msg, "branches.max_per_user") || !strings.Contains(msg, "delete") {
			t.Errorf("quota message %q should name branches.max_per_user and say to delete some", msg)
		}
		if c := HTTPStatus(err); c < 400 || c >= 500 {
			t.Errorf("quota refusal maps to %d, want a 4xx", c)
		}
		if _, err := f.tw.GetBranch(ctx, alice, "q/a3"); err == nil {
			t.Error("the refused branch exists")
		}
		// bob has his own two; admins are bound by max_branches only.
		f.create(bob, api.CreateBranchRequest{Name: "q/b1"})
		for _, n := range []string{"q/r1", "q/r2", "q/r3"} {
			f.create(RootCaller, api.CreateBranchRequest{Name: n})
		}
		if err := f.tw.DeleteBranch(ctx, alice, "q/a2"); err != nil {
			t.Fatal(err)
		}
		f.create(alice, api.CreateBranchRequest{Name: "q/a3"})
	})

	// Over the socket API's handler, with the peer credentials a unix
	// socket would give.
	call := func(uid, gid int, method, path, body string) (int, string) {
		req := httptest.NewRequest(method, "http://pgtwin"+path, strings.NewReader(body))
		req = req.WithContext(context.WithValue(req.Context(), ctxKey{}, peer{ok: true, uid: uid, gid: gid}))
		rec := httptest.NewRecorder()
		f.tw.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}

	t.Run("who may start a sync", func(t *testing.T) {
		// No syncer is plugged in: a caller let through gets 501, one
		// refused 403 before that.
		code, body := call(alice.UID, 41001, "POST", "/v1/sync", `{}`)
		if code != http.StatusForbidden || !strings.Contains(body, "sync.allow_group") || !strings.Contains(body, "admin") {
			t.Errorf("alice starts a sync: %d %s; want 403 saying who may", code, body)
		}
		t.Logf("%d %s", code, body)
		code, body = call(alice.UID, 41001, "POST", "/v1/sync", `{"resync": true}`)
		if code != http.StatusForbidden {
			t.Errorf("alice starts a resync: %d %s; want 403", code, body)
		}
		for _, c := range []struct {
			who      string
			uid, gid int
		}{{"root", 0, 0}, {"a member of sync.allow_group", 41005, syncGID}} {
			if code, body := call(c.uid, c.gid, "POST", "/v1/sync", `{}`); code != http.StatusNotImplemented {
				t.Errorf("%s starts a sync: %d %s; want it let through (501: no source here)", c.who, code, body)
			}
		}
		for _, p := range []string{"/v1/sync", "/v1/mask/plan"} {
			if code, body := call(alice.UID, 41001, "GET", p, ""); code != http.StatusNotImplemented {
				t.Errorf("alice reads %s: %d %s; want it open to her (501: no source here)", p, code, body)
			}
		}
	})

	t.Run("one JSON value per body", func(t *testing.T) {
		for _, body := range []string{`{"name":"tj/x"}{"name":"tj/y"}`, `{} []`, `{"name":"tj/x"} {`, `{"name":"tj/x"} x`} {
			if code, resp := call(0, 0, "POST", "/v1/branches", body); code != http.StatusBadRequest {
				t.Errorf("create with body %s: %d %s; want 400", body, code, resp)
			}
		}
		if code, resp := call(0, 0, "PATCH", "/v1/branches/pw/a", `{"protected": true} {"protected": false}`); code != http.StatusBadRequest {
			t.Errorf("update with two values: %d %s; want 400", code, resp)
		}
		if code, resp := call(0, 0, "POST", "/v1/sync", `{} {}`); code != http.StatusBadRequest {
			t.Errorf("sync with two values: %d %s; want 400", code, resp)
		}
		for _, n := range []string{"tj/x", "tj/y"} {
			if _, err := f.tw.GetBranch(ctx, RootCaller, n); err == nil {
				t.Errorf("a refused body made branch %s", n)
			}
		}
		if f.record("pw/a").Protected {
			t.Error("a refused body protected pw/a")
		}
		// Trailing whitespace is no second value.
		if code, resp := call(0, 0, "POST", "/v1/branches", "{\"name\":\"tj/ok\"} \n\t\n"); code != http.StatusCreated {
			t.Errorf("create with trailing whitespace: %d %s; want 201", code, resp)
		}
	})

	t.Run("pool nearly full", func(t *testing.T) {
		st := f.tw.Status(ctx, alice)
		if st.Pool == nil || st.Pool.TotalBytes <= 0 || st.Pool.FreeBytes <= 0 {
			t.Fatalf("status has no pool figures: %+v", st.Pool)
		}
		if len(st.Warnings) != 0 {
			t.Fatalf("warnings on a pool with %d of %d bytes free: %v", st.Pool.FreeBytes, st.Pool.TotalBytes, st.Warnings)
		}
		filler := enginetest.Fill(t, f.base, 100<<20)
		st = f.tw.Status(ctx, alice)
		if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "nearly full") || !strings.Contains(st.Warnings[0], "delete") {
			t.Fatalf("status with %d of %d bytes free: warnings %q; want one saying the pool is nearly full", st.Pool.FreeBytes, st.Pool.TotalBytes, st.Warnings)
		}
		t.Log(st.Warnings[0])
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the warning gone once space is freed", func() bool { return len(f.tw.Status(ctx, alice).Warnings) == 0 })
	})
}

func TestPoolWarning(t *testing.T) {
	const g = int64(1 << 30)
	for _, c := range []struct {
		free, total int64
		warn        bool
	}{
		{50 * g, 100 * g, false}, {9 * g, 100 * g, true}, {11 * g, 100 * g, false},
		{2 * g, 8 * g, false}, {g - 1, 8 * g, true}, // under 1 GiB
		{300 << 20, g, false}, {200 << 20, g, true}, // a small pool: a quarter
	} {
		if got := poolWarning(c.free, c.total) != ""; got != c.warn {
			t.Errorf("free %d of %d: warning %v, want %v", c.free, c.total, got, c.warn)
		}
	}
}

func TestBranchNameDash(t *testing.T) {
	for _, n := range []string{"-rf", "-", "dev/-x", "a/b/--help"} {
		if err := ValidateBranchName(n); err == nil || !strings.Contains(err.Error(), "'-'") {
			t.Errorf("%q: %v; want a refusal about '-'", n, err)
		}
	}
	for _, n := range []string{"dev/x-", "a-b/c-d", "pr-42", "_x/.y"} {
		if err := ValidateBranchName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
}

func password(t testing.TB, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil || u.User == nil {
		t.Fatalf("URL %q: %v", uri, err)
	}
	pw, _ := u.User.Password()
	return pw
}

func find(bs []api.Branch, name string) (api.Branch, bool) {
	for _, b := range bs {
		if b.Name == name {
			return b, true
		}
	}
	return api.Branch{}, false
}

// sync.allow_group counts primary and supplementary groups, as admin_group
// does; admins may always sync.
func TestCallerCanSync(t *testing.T) {
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the postgres OS user is needed (install postgresql): %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	primary, err := user.LookupGroupId(pg.Gid)
	if err != nil {
		t.Fatal(err)
	}
	tw := &Twin{}
	tw.cfg.Daemon.AdminGroup = "no-such-group-here"
	if c := tw.CallerFor(uid, gid); c.CanSync || c.Admin {
		t.Fatalf("postgres with an empty sync.allow_group: %+v", c)
	}
	if c := tw.CallerFor(0, 0); !c.CanSync {
		t.Fatalf("root: %+v", c)
	}
	tw.cfg.Sync.AllowGroup = primary.Name
	if c := tw.CallerFor(uid, gid); !c.CanSync || c.Admin {
		t.Fatalf("postgres, primary group %s in sync.allow_group: %+v", primary.Name, c)
	}
	gids, err := pg.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gids {
		if g == pg.Gid {
			continue
		}
		sup, err := user.LookupGroupId(g)
		if err != nil {
			t.Fatal(err)
		}
		tw.cfg.Sync.AllowGroup = sup.Name
		if c := tw.CallerFor(uid, gid); !c.CanSync {
			t.Fatalf("postgres, supplementary group %s in sync.allow_group: %+v", sup.Name, c)
		}
		return
	}
	t.Log("postgres has no supplementary group here; only the primary group was checked")
}
