package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyncSetupSQL: `sync setup-sql` reads only the config (no daemon, no
// source) and prints the SQL for its mode; without a source URL it says
// what to set.
func TestSyncSetupSQL(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(socketEnv, filepath.Join(dir, "none.sock"))
	cfg := filepath.Join(dir, "pgtwin.toml")
	os.WriteFile(cfg, []byte(`[source]
url = "postgres://pgtwin_ro@prod.internal/clinic?sslmode=verify-full"
[sync]
mode = "logical"
publication = "twin"
exclude_tables = ["audit.*"]
`), 0o600)
	out, stderr, code := run(t, "sync", "setup-sql", "--config", cfg)
	if code != 0 {
		t.Fatalf("sync setup-sql: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{`GRANT CONNECT ON DATABASE "clinic" TO "pgtwin_ro";`, `ALTER ROLE "pgtwin_ro" REPLICATION;`,
		`EXECUTE format('CREATE PUBLICATION %I', 'twin');`} {
		if !strings.Contains(out, want) {
			t.Errorf("sync setup-sql output lacks %q:\n%s", want, out)
		}
	}

	os.WriteFile(cfg, []byte("[sync]\nmode = \"dump\"\n"), 0o600)
	_, stderr, code = run(t, "sync", "setup-sql", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "has no [source] url") {
		t.Errorf("sync setup-sql without source.url: exit %d, stderr %q; want 1 saying to set it", code, stderr)
	}
}
