package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/internal/sample"
)

// TestSyncFeatureSchema: the feature schema (what production schemas use)
// through a full masked dump sync by the daemon. Main's schema is the
// source's except what `mask plan` says changes; every unmasked column is
// identical, masked ones hold none of the source's values; sequences
// continue; a branch's login role reads and writes every table, refreshes
// every materialized view, and can SET ROLE to the source's roles, whose
// grants and policies came along.
func TestSyncFeatureSchema(t *testing.T) {
	ctx := context.Background()
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"feature"}})
	src.Exec(t, "postgres", sample.FeatureRoles)
	src.Exec(t, "feature", sample.FeatureSchema)

	var cfg strings.Builder
	fmt.Fprintf(&cfg, "\n[source]\nurl = %q\n\n[sync]\nmode = \"dump\"\nparallel = 2\n\n", src.ConnString("feature"))
	fmt.Fprintf(&cfg, "[anonymize]\nkey_file = %q\non_unclassified_pii = \"fail\"\n\n[anonymize.columns]\n", filepath.Join(t.TempDir(), "mask.key"))
	for k, v := range sample.FeatureRules {
		fmt.Fprintf(&cfg, "%q = %s\n", k, v)
	}
	d := startDaemon(t, daemonOpts{Driver: "btrfs", Extra: cfg.String()})

	plan := d.cli(root, "mask", "plan")
	for _, want := range []string{
		"warning: 2 large objects not copied: they can hold PII and no rule masks them",
		"warning: 1 ALTER DEFAULT PRIVILEGES entry is not restored",
		`warning: grants and policies name the roles "Report Users", app_owner, app_reader, app_writer: the twin creates each it lacks as a NOLOGIN role`,
	} {
		if plan.code != 0 || !strings.Contains(plan.stdout, want) {
			t.Fatalf("mask plan: want %q\n%s", want, plan)
		}
	}
	d.syncOK(t)

	srcConn := connectT(t, src.ConnString("feature"))
	mainConn := connectT(t, d.mainConnString(t))

	// The schema: what pg_dump says, less owners; the default privileges
	// are the one change, and the plan said so.
	onlySrc, onlyMain := statementDiff(schemaStatements(t, src.Bin, src.ConnString("feature")), schemaStatements(t, src.Bin, d.mainConnString(t)))
	if len(onlySrc) != 1 || !strings.HasPrefix(onlySrc[0], "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA app GRANT SELECT ON TABLES") || len(onlyMain) != 0 {
		t.Errorf("schema of main differs from the source's beyond the default privileges:\nonly in source:\n%s\nonly in main:\n%s",
			strings.Join(onlySrc, "\n"), strings.Join(onlyMain, "\n"))
	}

	// Rows: every table's columns, as multisets; masked ones share no value.
	masked := map[string]bool{}
	for _, c := range sample.FeatureMasked {
		masked[c] = true
	}
	tables := strs(t, srcConn, `SELECT format('%I.%I', n.nspname, c.relname) || ' ' || n.nspname || '.' || c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`)
	if len(tables) < 25 {
		t.Fatalf("the source has only %d tables: %v", len(tables), tables)
	}
	for _, row := range tables {
		table, name, _ := strings.Cut(row, " ")
		q := "SELECT count(*) FROM ONLY " + table
		if s, m := count(t, srcConn, q), count(t, mainConn, q); s != m {
			t.Errorf("%s: %d rows in the source, %d in main", table, s, m)
		}
		generated := strs(t, srcConn, fmt.Sprintf(`SELECT attname::text FROM pg_attribute WHERE attrelid = %s::regclass AND attgenerated <> ''`, quote(table)))
	columns:
		for _, col := range columns(t, srcConn, table) {
			for _, g := range generated {
				if g == col {
					continue columns // computed by main from its (maybe masked) columns; checked below
				}
			}
			id := pgx.Identifier{col}.Sanitize()
			if masked[name+"."+col] {
				sv := strs(t, srcConn, fmt.Sprintf("SELECT %s::text FROM ONLY %s WHERE %s IS NOT NULL", id, table, id))
				seen := map[string]bool{}
				for _, v := range sv {
					seen[v] = true
				}
				for _, v := range strs(t, mainConn, fmt.Sprintf("SELECT %s::text FROM ONLY %s WHERE %s IS NOT NULL", id, table, id)) {
					if seen[v] {
						t.Errorf("masked column %s.%s holds a source value", table, col)
						break
					}
				}
				continue
			}
			q := fmt.Sprintf(`SELECT coalesce(md5(string_agg(coalesce(%s::text, '<NULL>'), E'\x01' ORDER BY coalesce(%[1]s::text, '<NULL>') COLLATE "C")), '') FROM ONLY %s`, id, table)
			var sh, mh string
			if err := srcConn.QueryRow(ctx, q).Scan(&sh); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if err := mainConn.QueryRow(ctx, q).Scan(&mh); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if sh != mh {
				t.Errorf("column %s.%s differs between the source and main", table, col)
			}
		}
	}
	if n := count(t, mainConn, "SELECT count(*) FROM app.accounts WHERE handle_len IS DISTINCT FROM length(handle::text)"); n != 0 {
		t.Errorf("%d rows of app.accounts with handle_len not generated from the masked handle", n)
	}
	if o := strs(t, mainConn, "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = 'public'"); len(o) != 1 || o[0] != "pgtwin_owner" {
		t.Errorf("main's public schema is owned by %v, want pgtwin_owner (through which branch roles own it)", o)
	}
	if n := count(t, mainConn, "SELECT count(*) FROM pg_largeobject_metadata"); n != 0 {
		t.Errorf("main has %d large objects; the plan said none is copied", n)
	}
	if n := count(t, mainConn, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"); n != 0 {
		t.Errorf("%d foreign keys not validated in main", n)
	}

	// Sequences as on the source.
	seqs := strs(t, srcConn, `SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences ORDER BY 1`)
	for _, s := range seqs {
		q := "SELECT last_value::text || '/' || is_called::text FROM " + s
		if a, b := strs(t, srcConn, q), strs(t, mainConn, q); strings.Join(a, "") != strings.Join(b, "") {
			t.Errorf("sequence %s: source %v, main %v", s, a, b)
		}
	}
	mainConn.Close(ctx)

	// A branch, as its login role.
	b := d.create(t, root, "feature/dev")
	bc := connectT(t, b.ConnectionURI)
	write := func(sql string) {
		t.Helper()
		if _, err := bc.Exec(ctx, sql); err != nil {
			t.Errorf("branch: %s: %v", sql, err)
		}
	}
	for _, row := range tables {
		table, _, _ := strings.Cut(row, " ")
		count(t, bc, "SELECT count(*) FROM "+table)
		// A write to every table: the first column set to itself (an
		// identity ALWAYS column to its own default is no write).
		col := strs(t, bc, fmt.Sprintf(`SELECT attname::text FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0
			AND NOT attisdropped AND attgenerated = '' AND attidentity <> 'a' ORDER BY attnum LIMIT 1`, quote(table)))
		if len(col) == 1 {
			id := pgx.Identifier{col[0]}.Sanitize()
			write(fmt.Sprintf("UPDATE %s SET %s = %s", table, id, id))
		}
	}
	for _, mv := range strs(t, srcConn, "SELECT format('%I.%I', schemaname, matviewname) FROM pg_matviews ORDER BY 1") {
		write("REFRESH MATERIALIZED VIEW " + mv)
	}
	write("REFRESH MATERIALIZED VIEW CONCURRENTLY app.account_stats")
	// Sequences continue past the source's values; identity, partition
	// routing, domains and the security-definer function work.
	if id := count(t, bc, "INSERT INTO app.accounts (handle) VALUES ('new-acct') RETURNING id"); id != 301 {
		t.Errorf("new account id = %d, want 301", id)
	}
	if n := count(t, bc, "SELECT nextval('app.invoice_no')"); n != 5007 {
		t.Errorf("app.invoice_no continued at %d, want 5007", n)
	}
	write("INSERT INTO app.events (at, region) VALUES ('2024-05-01', 'uk'), ('2030-01-01', 'us')")
	write("INSERT INTO app.people (email, full_name) VALUES ('new@example.com', 'New Person')")
	write(`INSERT INTO public."order" ("user", "group") VALUES (1000, 'g')`)
	write("CREATE TABLE public.branch_made (id int)")
	if n := count(t, bc, "SELECT app.account_count()"); n != 301 {
		t.Errorf("app.account_count() = %d, want 301", n)
	}
	// Forced row security holds for the owner, and the source's roles are
	// there to SET ROLE to, with their grants and policies.
	for _, c := range []struct {
		setup string
		want  int64
	}{
		{"RESET ROLE; RESET app.account_id", 0},
		{"SET app.account_id = '1'", 6},
		{"SET ROLE app_writer", 60},
		{"SET ROLE app_reader; RESET app.account_id", 40},
	} {
		write(c.setup)
		if n := count(t, bc, "SELECT count(*) FROM app.notes"); n != c.want {
			t.Errorf("after %s: app.notes shows %d rows, want %d", c.setup, n, c.want)
		}
	}
	write("RESET ROLE")
	write("SET app.account_id = '2'")
	write("INSERT INTO app.notes (id, account_id, body) VALUES (1000, 2, 'written in the branch')")
	write(`SET ROLE "Report Users"`)
	if n := count(t, bc, "SELECT count(*) FROM app.documents"); n != 5 {
		t.Errorf(`"Report Users" sees %d documents, want the 5 published`, n)
	}
	if _, err := bc.Exec(ctx, "SELECT status FROM app.accounts LIMIT 1"); err == nil {
		t.Error(`"Report Users" read app.accounts.status, granted only id and handle`)
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// schemaStatements is pg_dump --schema-only of a database as a sorted list
// of statements, without owners, comments and session settings.
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
	n := map[string]int{}
	for _, s := range a {
		n[s]++
	}
	for _, s := range b {
		n[s]--
	}
	for s, k := range n {
		for ; k > 0; k-- {
			onlyA = append(onlyA, s)
		}
		for ; k < 0; k++ {
			onlyB = append(onlyB, s)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return onlyA, onlyB
}
