package twinsync

import (
	"errors"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/internal/config"
)

// TestGlobRegexp: the SQL that setup-sql prints picks the tables that
// selection.Includes (path.Match) picks.
func TestGlobRegexp(t *testing.T) {
	patterns := []string{"audit", "audit*", "*_log", "?x", "a[bc]d", "a[^b]d", "a[a-c]d", `a\*b`, "a.b", "tmp_*_old", "[", "x(y)+", "ü*"}
	names := []string{"audit", "audit_2024", "events_log", "ax", "abx", "abd", "acd", "add", "a*b", "aab", "a.b", "axb",
		"tmp_1_old", "tmp__old", "[", "x(y)+", "xyy", "über", "a/b", "audit/x"}
	for _, p := range patterns {
		re, err := regexp.Compile(globRegexp(p))
		if err != nil {
			t.Fatalf("globRegexp(%q) = %q: %v", p, globRegexp(p), err)
		}
		for _, n := range names {
			if want, got := match(p, n), re.MatchString(n); got != want {
				t.Errorf("pattern %q, name %q: regexp %q says %v, path.Match says %v", p, n, globRegexp(p), got, want)
			}
		}
	}
	if _, err := path.Match("[", ""); err == nil {
		t.Fatal(`path.Match("[") is no longer malformed: the test's malformed case checks nothing`)
	}
}

func setupConfig(mode, url string) config.Config {
	cfg := config.DefaultConfig()
	cfg.Sync.Mode = mode
	cfg.Source.URL = url
	return cfg
}

// TestSetupSQLDump: dump mode grants reading and nothing else; names are
// quoted as identifiers where they are identifiers and as literals where
// they are values.
func TestSetupSQLDump(t *testing.T) {
	cfg := setupConfig("dump", `postgres://Ro%22le@db.internal:5432/My%20DB?sslmode=require`)
	cfg.Sync.IncludeSchemas = []string{"app", "Sales"}
	sql, err := SetupSQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`GRANT CONNECT ON DATABASE "My DB" TO "Ro""le";`,
		`GRANT USAGE ON SCHEMA "app" TO "Ro""le";`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA "Sales" TO "Ro""le";`,
		`GRANT SELECT ON ALL SEQUENCES IN SCHEMA "app" TO "Ro""le";`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I', r.owner, r.nspname, 'Ro"le');`,
		`n.nspname IN ('app', 'Sales')`,
		`--   CREATE ROLE "Ro""le" LOGIN PASSWORD`,
		`-d 'My DB'`,
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("dump setup SQL lacks %q:\n%s", want, sql)
		}
	}
	for _, not := range []string{"REPLICATION", "PUBLICATION", "rds_replication"} {
		if strings.Contains(sql, not) {
			t.Errorf("dump setup SQL mentions %s, which dump mode does not need:\n%s", not, sql)
		}
	}
}

// TestSetupSQLLogical: logical mode adds REPLICATION (rds_replication
// commented) and the publication: FOR ALL TABLES when nothing is excluded,
// else the selected tables, named as sync.publication or "pgtwin" with a
// note to configure it.
func TestSetupSQLLogical(t *testing.T) {
	cfg := setupConfig("logical", "postgres://pgtwin_ro@db/clinic")
	sql, err := SetupSQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ALTER ROLE "pgtwin_ro" REPLICATION;`,
		`-- GRANT rds_replication TO "pgtwin_ro";`,
		`EXECUTE format('CREATE PUBLICATION %I FOR ALL TABLES', 'pgtwin');`,
		`[sync] publication = "pgtwin"`,
		`EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', r.nspname, 'pgtwin_ro');`,
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("logical setup SQL lacks %q:\n%s", want, sql)
		}
	}

	cfg.Sync.Publication = "twin feed"
	cfg.Sync.ExcludeTables = []string{"audit.*", "tmp_?"}
	sql, err = SetupSQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`EXECUTE format('CREATE PUBLICATION %I', 'twin feed');`,
		`EXECUTE format('ALTER PUBLICATION %I ADD TABLE ONLY %I.%I', 'twin feed', r.nspname, r.relname);`,
		`AND NOT (n.nspname ~ '^audit$' AND c.relname ~ '^[^/]*$')`,
		`AND NOT (c.relname ~ '^tmp_[^/]$')`,
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("logical setup SQL with exclusions lacks %q:\n%s", want, sql)
		}
	}
	if strings.Contains(sql, "FOR ALL TABLES") || strings.Contains(sql, "[sync] publication") {
		t.Errorf("setup SQL with exclusions and a configured publication:\n%s", sql)
	}
}

// TestSetupSQLDollarQuote: a name holding the DO block's dollar tag moves
// the tag, so the block still parses.
func TestSetupSQLDollarQuote(t *testing.T) {
	cfg := setupConfig("logical", "postgres://db/clinic?user=a$pgtwin$b")
	cfg.Sync.IncludeSchemas = []string{"app"}
	sql, err := SetupSQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sql, "DO $pgtwin1$\n") || !strings.Contains(sql, "END\n$pgtwin1$;") {
		t.Errorf("DO blocks keep a tag their body holds:\n%s", sql)
	}
	if _, err := SetupSQL(setupConfig("dump", "")); !errors.Is(err, ErrNoSource) {
		t.Errorf("SetupSQL without source.url = %v, want ErrNoSource", err)
	}
}

// TestSetupSQLSubset: a subset's temporary row sets need TEMPORARY, which
// setup-sql grants only when sync.subset is set.
func TestSetupSQLSubset(t *testing.T) {
	cfg := setupConfig("dump", `postgres://ro@db.internal:5432/app`)
	const grant = `GRANT TEMPORARY ON DATABASE "app" TO "ro";`
	if sql, err := SetupSQL(cfg); err != nil || strings.Contains(sql, grant) {
		t.Fatalf("without a subset: %v, or it grants TEMPORARY:\n%s", err, sql)
	}
	cfg.Sync.Subset = map[string]string{"public.orders": "created_at > now() - interval '30 days'"}
	sql, err := SetupSQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sql, grant) {
		t.Errorf("with a subset the SQL lacks %q:\n%s", grant, sql)
	}
}
