package twinsync

import (
	"context"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/internal/sample"
)

func newFeatureSource(t *testing.T) *pgtest.Cluster {
	t.Helper()
	c := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}})
	c.Exec(t, "postgres", sample.FeatureRoles)
	c.Exec(t, "app", sample.FeatureSchema)
	return c
}

// schemaStatements is pg_dump --schema-only of db as a sorted list of
// statements, without owners, comments and session settings.
func schemaStatements(t *testing.T, bin, conn string) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--schema-only", "--no-owner", "--dbname="+conn).Output()
	if err != nil {
		t.Fatalf("pg_dump --schema-only: %v", err)
	}
	var stmts []string
	for _, s := range strings.Split(string(out), ";\n") {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "--") || strings.HasPrefix(l, `\restrict`) || strings.HasPrefix(l, `\unrestrict`) || strings.TrimSpace(l) == "" {
				continue
			}
			keep = append(keep, l)
		}
		st := strings.Join(keep, "\n")
		if st == "" || strings.HasPrefix(st, "SET ") || strings.HasPrefix(st, "SELECT pg_catalog.set_config") {
			continue
		}
		stmts = append(stmts, st)
	}
	sort.Strings(stmts)
	return stmts
}

// statementDiff returns the statements only in a and only in b.
func statementDiff(a, b []string) (onlyA, onlyB []string) {
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	for s, n := range count {
		for ; n > 0; n-- {
			onlyA = append(onlyA, s)
		}
		for ; n < 0; n++ {
			onlyB = append(onlyB, s)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return onlyA, onlyB
}

// TestDumpSyncFeatureSchema: the feature schema's definition arrives as the
// source has it (pg_dump of both, owners aside), grants and policies to
// source-only roles, forced row security over foreign keys and all; only
// the default privileges stay behind, as the plan says. The e2e test
// TestSyncFeatureSchema checks the rows and a branch's use of them.
func TestDumpSyncFeatureSchema(t *testing.T) {
	src := newFeatureSource(t)
	tc, tgt := newTarget(t)
	log, logs := testLogger(t)
	d := &dumper{
		Source:   source{URL: src.ConnString("app")},
		Parallel: 2,
		Plan:     plan(hashMasker{"app.people": {"email", "full_name", "phone"}}),
		Backoff:  backoff{Initial: 10 * time.Millisecond, Attempts: 3},
		Log:      log,
	}
	if err := d.Run(context.Background(), tgt, nil); err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, logs)
	}
	onlySrc, onlyTwin := statementDiff(schemaStatements(t, src.Bin, src.ConnString("app")), schemaStatements(t, tc.Bin, tc.ConnString("app")))
	if len(onlySrc) != 1 || !strings.HasPrefix(onlySrc[0], "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA app") || len(onlyTwin) != 0 {
		t.Errorf("the twin's schema differs from the source's beyond the default privileges:\nonly in the source:\n%s\nonly in the twin:\n%s",
			strings.Join(onlySrc, "\n"), strings.Join(onlyTwin, "\n"))
	}
	// The source's roles exist, NOLOGIN, reachable by SET ROLE from the
	// owner but not inherited.
	for q, want := range map[string]string{
		`SELECT string_agg(rolname || ':' || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles WHERE pg_has_role('pgtwin_source_roles', oid, 'MEMBER') AND rolname <> 'pgtwin_source_roles'`: "Report Users:false,app_owner:false,app_reader:false,app_writer:false",
		`SELECT pg_has_role('pgtwin_owner', 'app_writer', 'MEMBER')::text || ',' || pg_has_role('pgtwin_owner', 'app_writer', 'USAGE')::text`:                                               "true,false",
		`SELECT relforcerowsecurity::text FROM pg_class WHERE oid = 'app.notes'::regclass`:                                                                                                  "true",
	} {
		if got := query[string](t, tc, q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
}
