package twin

import (
	"os/user"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRoleFor(t *testing.T) {
	for in, want := range map[string]string{
		"alice": "alice", "pgtwin_super": "u_pgtwin_super", "pgtwin_owner": "u_pgtwin_owner",
		"pg_monitor": "u_pg_monitor", "public": "u_public",
	} {
		if got := roleFor(in); got != want {
			t.Errorf("roleFor(%q) = %q, want %q", in, got, want)
		}
	}
	if got := roleFor(strings.Repeat("x", 70)); len(got) > 63 {
		t.Errorf("role %q longer than 63", got)
	}
}

func TestParseAtAndTTL(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	if at, err := parseAt("2h", now); err != nil || !at.Equal(now.Add(-2*time.Hour)) {
		t.Fatalf("2h: %v %v", at, err)
	}
	if at, err := parseAt("1d", now); err != nil || !at.Equal(now.Add(-24*time.Hour)) {
		t.Fatalf("1d: %v %v", at, err)
	}
	if at, err := parseAt("2026-11-21T09:00:00Z", now); err != nil || at.Hour() != 9 {
		t.Fatalf("rfc3339: %v %v", at, err)
	}
	if _, err := parseAt("noon", now); err == nil {
		t.Fatal("noon accepted")
	}
	if d, err := parseTTL("7d"); err != nil || d != 7*24*time.Hour {
		t.Fatalf("7d: %v %v", d, err)
	}
	if _, err := parseTTL("-1h"); err == nil {
		t.Fatal("negative ttl accepted")
	}
}

func TestSourceDatabaseAndURI(t *testing.T) {
	for in, want := range map[string]string{
		"": "postgres", "postgres://u@h:5432/app?sslmode=require": "app", "postgresql://h": "postgres",
		"host=h dbname=shop user=x": "shop",
	} {
		if got := sourceDatabase(in); got != want {
			t.Errorf("sourceDatabase(%q) = %q, want %q", in, got, want)
		}
	}
	if u := connectionURI("alice", "pw", "0.0.0.0", 6501, "app"); u != "postgres://alice:pw@127.0.0.1:6501/app" {
		t.Errorf("uri %s", u)
	}
	if u := connectionURI("alice", "pw", "::", 6501, "app"); u != "postgres://alice:pw@[::1]:6501/app" {
		t.Errorf("uri %s", u)
	}
}

// Callers are resolved from peer credentials against the passwd and group
// databases: root is admin; others by membership of daemon.admin_group.
func TestCallerFor(t *testing.T) {
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the postgres OS user is needed (install postgresql): %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	grp, err := user.LookupGroupId(pg.Gid)
	if err != nil {
		t.Fatal(err)
	}
	tw := &Twin{}
	tw.cfg.Daemon.AdminGroup = "no-such-group-here"
	if c := tw.CallerFor(0, 0); !c.Admin || c.User != "root" {
		t.Fatalf("root: %+v", c)
	}
	if c := tw.CallerFor(uid, gid); c.Admin || c.User != "postgres" {
		t.Fatalf("postgres, not in the admin group: %+v", c)
	}
	tw.cfg.Daemon.AdminGroup = grp.Name
	if c := tw.CallerFor(uid, gid); !c.Admin {
		t.Fatalf("postgres in admin group %s: %+v", grp.Name, c)
	}
	if c := tw.CallerFor(4242420, 4242420); c.Admin || c.User != "uid4242420" {
		t.Fatalf("unknown uid: %+v", c)
	}
}
