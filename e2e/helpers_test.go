package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/twin/api"
)

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("%s\n-o json output is not JSON of %T: %v", r, v, err)
	}
	return v
}

func (d *daemon) status(t *testing.T) api.Status {
	t.Helper()
	return decode[api.Status](t, d.must(root, "status", "-o", "json"))
}

func (d *daemon) list(t *testing.T, u osUser) []api.Branch {
	t.Helper()
	return decode[[]api.Branch](t, d.must(u, "branches", "list", "-o", "json"))
}

func (d *daemon) get(t *testing.T, u osUser, name string) api.Branch {
	t.Helper()
	return decode[api.Branch](t, d.must(u, "branches", "get", name, "-o", "json"))
}

func (d *daemon) create(t *testing.T, u osUser, name string, flags ...string) api.Branch {
	t.Helper()
	return decode[api.Branch](t, d.must(u, append([]string{"branches", "create", name, "-o", "json"}, flags...)...))
}

func (d *daemon) reset(t *testing.T, u osUser, name string) api.Branch {
	t.Helper()
	return decode[api.Branch](t, d.must(u, "branches", "reset", name, "-o", "json"))
}

func (d *daemon) snapshot(t *testing.T, flags ...string) api.Snapshot {
	t.Helper()
	return decode[api.Snapshot](t, d.must(root, append([]string{"snapshots", "create", "-o", "json"}, flags...)...))
}

func names(bs []api.Branch) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Name)
	}
	return out
}

func find(bs []api.Branch, name string) (api.Branch, bool) {
	for _, b := range bs {
		if b.Name == name {
			return b, true
		}
	}
	return api.Branch{}, false
}

// mainConnString reaches main as its superuser over main's unix socket, the
// way the sync does (peer authentication maps root to the superuser).
func (d *daemon) mainConnString(t *testing.T) string {
	t.Helper()
	st := d.status(t)
	socks, _ := filepath.Glob(filepath.Join(d.DataDir, "run", "*", fmt.Sprintf(".s.PGSQL.%d", st.Main.Port)))
	if len(socks) != 1 {
		t.Fatalf("main's unix socket for port %d not found under %s/run (found %v)", st.Main.Port, d.DataDir, socks)
	}
	db := st.Main.Database
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("host=%s port=%d user=pgtwin_super dbname=%s", filepath.Dir(socks[0]), st.Main.Port, db)
}

// mainExec writes into main as the role that owns what the sync restores,
// so branches' roles own and can change it.
func (d *daemon) mainExec(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.mainConnString(t))
	if err != nil {
		t.Fatalf("connect to main: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET ROLE pgtwin_owner; "+sql); err != nil {
		t.Fatalf("main: %s: %v", sql, err)
	}
}

func (d *daemon) mainQueryInt(t *testing.T, sql string) int64 {
	t.Helper()
	return queryInt(t, d.mainConnString(t), sql)
}

func connect(t *testing.T, uri string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pgx.Connect(ctx, uri)
}

func queryInt(t *testing.T, uri, sql string) int64 {
	t.Helper()
	conn, err := connect(t, uri)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(uri), err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s on %s: %v", sql, redact(uri), err)
	}
	return n
}

func execURI(t *testing.T, uri, sql string) {
	t.Helper()
	conn, err := connect(t, uri)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(uri), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s on %s: %v", sql, redact(uri), err)
	}
}

// tableExists answers through the branch's own role.
func tableExists(t *testing.T, uri, table string) bool {
	t.Helper()
	return queryInt(t, uri, fmt.Sprintf("SELECT count(*) FROM pg_class WHERE relname = '%s' AND relkind = 'r'", table)) > 0
}

// redact hides a URL's password in failure messages.
func redact(uri string) string {
	at := strings.LastIndex(uri, "@")
	scheme := strings.Index(uri, "://")
	if at < 0 || scheme < 0 {
		return uri
	}
	userinfo := uri[scheme+3 : at]
	if u, _, ok := strings.Cut(userinfo, ":"); ok {
		return uri[:scheme+3] + u + ":xxx" + uri[at:]
	}
	return uri
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s", what, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
