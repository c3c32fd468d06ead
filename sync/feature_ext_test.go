package twinsync

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// withAbsentExtension restarts c on a copy of its postgres binary whose
// share directory (found relative to the binary, as PostgreSQL does) has
// one more extension, pgtwin_absent: the source has it, this host's
// PostgreSQL, which the twin runs, does not. Everything else is the
// host's files, linked.
func withAbsentExtension(t *testing.T, c *pgtest.Cluster) {
	t.Helper()
	pgConfig := func(flag string) string {
		out, err := exec.Command(filepath.Join(c.Bin, "pg_config"), flag).Output()
		if err != nil {
			t.Fatalf("pg_config %s: %v", flag, err)
		}
		return strings.TrimSpace(string(out))
	}
	share, lib := pgConfig("--sharedir"), pgConfig("--pkglibdir")
	root, err := os.MkdirTemp("", "pgtwin-ext-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(root, c.Bin)
	must(os.MkdirAll(bin, 0o755))
	must(os.MkdirAll(filepath.Dir(filepath.Join(root, lib)), 0o755))
	must(os.Symlink(lib, filepath.Join(root, lib)))
	// The binary is copied: PostgreSQL resolves symlinks to find itself.
	in, err := os.Open(filepath.Join(c.Bin, "postgres"))
	must(err)
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(bin, "postgres"), os.O_CREATE|os.O_WRONLY, 0o755)
	must(err)
	_, err = io.Copy(out, in)
	must(err)
	must(out.Close())
	entries, err := os.ReadDir(share)
	must(err)
	must(os.MkdirAll(filepath.Join(root, share, "extension"), 0o755))
	for _, e := range entries {
		if e.Name() != "extension" {
			must(os.Symlink(filepath.Join(share, e.Name()), filepath.Join(root, share, e.Name())))
		}
	}
	exts, err := os.ReadDir(filepath.Join(share, "extension"))
	must(err)
	for _, e := range exts {
		must(os.Symlink(filepath.Join(share, "extension", e.Name()), filepath.Join(root, share, "extension", e.Name())))
	}
	must(os.WriteFile(filepath.Join(root, share, "extension", "pgtwin_absent.control"),
		[]byte("default_version = '1.0'\nrelocatable = true\ncomment = 'test-only: no twin host has it'\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, share, "extension", "pgtwin_absent--1.0.sql"),
		[]byte("CREATE DOMAIN absent_code AS text CHECK (VALUE ~ '^[A-Z]+$');\n"), 0o644))
	must(os.Chmod(root, 0o755)) // MkdirTemp's 0700 would keep the server's user out
	c.Bin = bin
	c.Restart(t, false)
}

func TestDumpSyncRefusesMissingExtension(t *testing.T) {
	ctx := context.Background()
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}})
	withAbsentExtension(t, src)
	src.Exec(t, "app", `CREATE EXTENSION pgtwin_absent;
		CREATE TABLE gadgets (id int PRIMARY KEY, code absent_code);
		INSERT INTO gadgets VALUES (1, 'ABC')`)
	tgtCluster, tgt := newTarget(t)
	want := "extension pgtwin_absent 1.0 (schema public) is used on the source but not installed on this host: " +
		"install the package that provides it for PostgreSQL 15 (apt-cache search pgtwin_absent) and sync again, or drop the extension from the source"

	// mask plan: the same sentence, from this host's share directory.
	p, err := maskPlan(ctx, source{URL: src.ConnString("app")}, selection{}, anonymize.Rules{}, anonymize.PolicyNull,
		backoff{Attempts: 1}, zerolog.Nop())
	if err != nil || !strings.Contains(p.String(), "warning: the sync will stop: "+want+"\n") {
		t.Fatalf("mask plan = %v\n%s\nwant the warning %q", err, p, want)
	}
	if got := planRefusal(p.Warnings); got != want {
		t.Errorf("mask plan's refusal (its exit 1) = %q, want %q", got, want)
	}

	d := &dumper{Source: source{URL: src.ConnString("app")}, Plan: plan(hashMasker{})}
	err = d.Run(ctx, tgt, nil)
	var se *stepError
	if !errors.As(err, &se) || se.Step != stepSchema || !errors.Is(err, errMissingExtension) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run = %v\nwant a refusal in step schema saying %q", err, want)
	}
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"); n != 0 {
		t.Errorf("the twin got %d relations though the sync was refused", n)
	}
	// An extension found outside contrib names its package.
	if s := missingExtensionSentence(sourceExtension{name: "vector", version: "0.7.0", schema: "public"}, 15); !strings.Contains(s, "apt-get install postgresql-15-pgvector and sync again") {
		t.Errorf("sentence for vector = %q", s)
	}
}
