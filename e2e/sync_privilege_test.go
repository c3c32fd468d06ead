package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/twin/api"
)

// TestSyncLeastPrivilege: logical mode as a role that owns
// nothing and is not a superuser, logging in with scram-sha-256. Without
// grants the sync stops with a sentence pointing to `pgtwin sync
// setup-sql`; once the source superuser has run what that command prints
// (from the daemon's own config), a resync fills main and follows. A table
// created afterwards, outside the publication, is a warning in `sync
// status` and `mask plan`.
func TestSyncLeastPrivilege(t *testing.T) {
	src := startShopOpts(t, 300, pgtest.Options{Logical: true, SCRAM: true})
	const pw = "Least-priv_scram-9"
	src.Exec(t, "shop", "CREATE ROLE pgtwin_ro LOGIN PASSWORD '"+pw+"'; REVOKE ALL ON DATABASE shop FROM PUBLIC")
	pwFile := filepath.Join(t.TempDir(), "source.pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := syncConfig(t, src, filepath.Join(t.TempDir(), "mask.key"), syncOpts{mode: "logical"})
	cfg = strings.Replace(cfg, fmt.Sprintf("url = %q\n", src.ConnString("shop")),
		fmt.Sprintf("url = %q\npassword_file = %q\n", fmt.Sprintf("postgres://pgtwin_ro@127.0.0.1:%d/shop?sslmode=disable", src.Port), pwFile), 1)
	cfg = strings.Replace(cfg, "mode = \"logical\"\n", "mode = \"logical\"\npublication = \"pgtwin\"\ninclude_schemas = [\"public\"]\n", 1)
	d := startDaemon(t, daemonOpts{Driver: "btrfs", Extra: cfg})

	var st api.SyncStatus
	eventually(t, time.Minute, "the sync refuses the role without grants", func() bool {
		st = d.syncStatus(t)
		return st.State == api.SyncFailed
	})
	if !strings.Contains(st.LastError, "pgtwin sync setup-sql") || !strings.Contains(st.LastError, "pgtwin_ro") {
		t.Fatalf("the refusal does not point to setup-sql: %q", st.LastError)
	}

	sql := d.must(root, "sync", "setup-sql", "--config", d.Config).stdout
	if !strings.Contains(sql, "ALTER PUBLICATION %I ADD TABLE ONLY") || !strings.Contains(sql, `TO "pgtwin_ro"`) {
		t.Fatalf("setup-sql for include_schemas = [\"public\"]:\n%s", sql)
	}
	src.Psql(t, "shop", sql)
	src.Exec(t, "shop", "CREATE TABLE public.late (id int PRIMARY KEY, qty int)")

	d.must(root, "sync", "now", "--resync")
	eventually(t, 2*time.Minute, "logical sync streams as pgtwin_ro", func() bool {
		st = d.syncStatus(t)
		if st.State == api.SyncFailed || st.State == api.SyncNeedsResync {
			t.Fatalf("logical sync as pgtwin_ro: %+v", st)
		}
		return st.State == api.SyncStreaming
	})
	src.Exec(t, "shop", "INSERT INTO customers (email, full_name) VALUES ('least.priv@gmail.com', 'Least Privilege')")
	eventually(t, time.Minute, "the insert reaches main", func() bool {
		return d.mainQueryInt(t, "SELECT count(*) FROM customers") == 301
	})
	if n := d.mainQueryInt(t, "SELECT count(*) FROM customers WHERE email = 'least.priv@gmail.com'"); n != 0 {
		t.Fatalf("the streamed row reached main unmasked")
	}
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], `"public"."late" is not in publication "pgtwin"`) {
		t.Errorf("sync status warnings = %q, want one for public.late", st.Warnings)
	}
	if out := d.must(root, "sync", "status").stdout; !strings.Contains(out, "Warning:") || !strings.Contains(out, `"public"."late"`) {
		t.Errorf("sync status table does not show the warning:\n%s", out)
	}
	if out := d.must(root, "mask", "plan").stdout; !strings.HasPrefix(out, `warning: table "public"."late" is not in publication`) {
		t.Errorf("mask plan does not start with the warning:\n%.600s", out)
	}
}
