package twinsync

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/internal/config"
)

// SetupSQL returns the SQL a source superuser (on RDS: the master user) runs
// once (again, to add tables created since to the publication) in the source database so that the role in source.url can sync as
// cfg says and do nothing more: read the synced schemas, and in logical mode
// replicate from a publication that pgtwin uses as it is. It reads only cfg:
// schemas and tables are found when the SQL runs, so it stays right for a
// schema that differs from the one at hand.
func SetupSQL(cfg config.Config) (string, error) {
	if cfg.Source.URL == "" {
		return "", ErrNoSource
	}
	pc, err := pgconn.ParseConfig(cfg.Source.URL)
	if err != nil {
		return "", fmt.Errorf("source.url: %w", redactURLError(err))
	}
	db := pc.Database
	if db == "" {
		db = pc.User
	}
	role := pc.User
	logical := cfg.Sync.Mode == "logical"
	sel := selection{IncludeSchemas: cfg.Sync.IncludeSchemas, ExcludeTables: cfg.Sync.ExcludeTables}
	w := &sqlWriter{role: role}

	mode := "dump"
	if logical {
		mode = "logical"
	}
	w.comment("pgtwin sync setup for sync.mode = %q: run once in database %s on the source,", mode, db)
	w.comment("as its superuser (on RDS, Aurora or Cloud SQL: the master user), e.g.")
	w.comment("  pgtwin sync setup-sql > pgtwin-setup.sql")
	w.comment("  psql -h SOURCE_HOST -U postgres -d %s -v ON_ERROR_STOP=1 -f pgtwin-setup.sql", shellWord(db))
	w.comment("It grants role %s (the user in source.url) only what the sync needs.", role)
	w.comment("The role must exist. To create it (choose a password; pg_hba.conf must let it")
	w.comment("connect over TCP, with scram-sha-256):")
	w.comment("  SET password_encryption = 'scram-sha-256';")
	w.comment("  CREATE ROLE %s LOGIN PASSWORD 'choose-one';", ident(role))
	w.line("")
	w.comment("Connect to the database.")
	w.line("GRANT CONNECT ON DATABASE %s TO %s;", ident(db), ident(role))
	if len(cfg.Sync.Subset) > 0 {
		w.comment("sync.subset computes its row sets in temporary tables (PUBLIC usually has this).")
		w.line("GRANT TEMPORARY ON DATABASE %s TO %s;", ident(db), ident(role))
	}
	w.line("")
	w.readGrants(sel)
	if !logical {
		return w.String(), nil
	}
	w.line("")
	w.comment("Stream changes through a replication slot. On RDS and Aurora, where ALTER ROLE")
	w.comment("... REPLICATION is refused, grant rds_replication instead (and set")
	w.comment("rds.logical_replication = 1 in the parameter group; elsewhere wal_level = logical):")
	w.line("ALTER ROLE %s REPLICATION;", ident(role))
	w.comment("GRANT rds_replication TO %s;", ident(role))
	w.line("")
	w.publication(cfg.Sync.Publication, sel)
	return w.String(), nil
}

type sqlWriter struct {
	strings.Builder
	role string
	do   *strings.Builder // the body of the DO block being written
}

func (w *sqlWriter) line(format string, args ...any) {
	b := &w.Builder
	if w.do != nil {
		b = w.do
	}
	fmt.Fprintf(b, format, args...)
	b.WriteByte('\n')
}

func (w *sqlWriter) beginDo() {
	w.do = &strings.Builder{}
	w.line("DECLARE r record;")
	w.line("BEGIN")
}

// endDo writes the DO block, dollar-quoted with a tag its body (names from
// the config) does not contain.
func (w *sqlWriter) endDo() {
	w.line("END")
	body := w.do.String()
	w.do = nil
	tag := "$pgtwin$"
	for i := 1; strings.Contains(body, tag); i++ {
		tag = fmt.Sprintf("$pgtwin%d$", i)
	}
	w.line("DO %s\n%s%s;", tag, body, tag)
}

func (w *sqlWriter) comment(format string, args ...any) {
	w.line("-- "+format, args...)
}

// readGrants lets the role read every table and sequence of the synced
// schemas, now and as the tables' owners create more. All of them, excluded
// tables too: pg_dump locks every table whose definition it dumps.
func (w *sqlWriter) readGrants(sel selection) {
	w.comment("Read the tables and sequences of the synced schemas (pg_dump locks every table")
	w.comment("whose definition it copies, excluded ones too), and those their owners create later.")
	w.comment("A table with row-level security needs ALTER ROLE %s BYPASSRLS as well, or", ident(w.role))
	w.comment("pgtwin cannot read all its rows (it refuses to copy part of a table).")
	if len(sel.IncludeSchemas) > 0 {
		for _, s := range sel.IncludeSchemas {
			w.line("GRANT USAGE ON SCHEMA %s TO %s;", ident(s), ident(w.role))
			w.line("GRANT SELECT ON ALL TABLES IN SCHEMA %s TO %s;", ident(s), ident(w.role))
			w.line("GRANT SELECT ON ALL SEQUENCES IN SCHEMA %s TO %s;", ident(s), ident(w.role))
		}
	}
	w.beginDo()
	if len(sel.IncludeSchemas) == 0 {
		w.line("  FOR r IN SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE %s ORDER BY 1 LOOP", schemaFilter(sel))
		w.line("    EXECUTE format('GRANT USAGE ON SCHEMA %%I TO %%I', r.nspname, %s);", literal(w.role))
		w.line("    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %%I TO %%I', r.nspname, %s);", literal(w.role))
		w.line("    EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %%I TO %%I', r.nspname, %s);", literal(w.role))
		w.line("  END LOOP;")
	}
	w.line("  FOR r IN SELECT DISTINCT pg_catalog.pg_get_userbyid(o.owner) AS owner, n.nspname")
	w.line("      FROM pg_catalog.pg_namespace n,")
	w.line("        LATERAL (SELECT n.nspowner UNION SELECT c.relowner FROM pg_catalog.pg_class c")
	w.line("          WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'S')) o (owner)")
	w.line("      WHERE %s ORDER BY 1, 2 LOOP", schemaFilter(sel))
	w.line("    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %%I IN SCHEMA %%I GRANT SELECT ON TABLES TO %%I', r.owner, r.nspname, %s);", literal(w.role))
	w.line("    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %%I IN SCHEMA %%I GRANT SELECT ON SEQUENCES TO %%I', r.owner, r.nspname, %s);", literal(w.role))
	w.line("  END LOOP;")
	w.endDo()
}

// publication creates the publication logical mode streams from: FOR ALL
// TABLES when the config excludes nothing, else the selected leaf tables
// (ONLY: an inheritance parent must not bring in excluded children), found
// as the SQL runs, the way the sync selects them.
func (w *sqlWriter) publication(name string, sel selection) {
	if name == "" {
		name = defaultPublication
		w.comment("sync.publication is empty, so pgtwin would create and alter publication %s", name)
		w.comment("itself, which takes a superuser or the tables' owner. With this least-privilege")
		w.comment("role, create it here and set in pgtwin's config: [sync] publication = %q", name)
	} else {
		w.comment("The publication pgtwin streams from (sync.publication); pgtwin never alters it.")
	}
	exists := "EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = " + literal(name) + ")"
	if len(sel.IncludeSchemas) == 0 && len(sel.ExcludeTables) == 0 {
		w.comment("FOR ALL TABLES needs a superuser; without one, list the tables as their owner")
		w.comment("(CREATE PUBLICATION ... FOR TABLE ...).")
		w.beginDo()
		w.line("  IF NOT %s THEN", exists)
		w.line("    EXECUTE format('CREATE PUBLICATION %%I FOR ALL TABLES', %s);", literal(name))
		w.line("  END IF;")
		w.endDo()
		return
	}
	w.comment("Adding a table takes its owner or a superuser: if you are neither (RDS), run")
	w.comment("SET ROLE <the tables' owner>; first. Tables created later are not in it (pgtwin")
	w.comment("sync status lists them): run this again to add them, then resync.")
	w.beginDo()
	w.line("  IF NOT %s THEN", exists)
	w.line("    EXECUTE format('CREATE PUBLICATION %%I', %s);", literal(name))
	w.line("  END IF;")
	w.line("  FOR r IN SELECT n.nspname, c.relname FROM pg_catalog.pg_class c")
	w.line("      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace")
	w.line("      WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND %s", schemaFilter(sel))
	w.line("        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass")
	w.line("          AND d.objid = c.oid AND d.deptype = 'e')")
	for _, x := range excludeFilters(sel.ExcludeTables) {
		w.line("        AND NOT (%s)", x)
	}
	w.line("        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid")
	w.line("          WHERE p.pubname = %s AND pr.prrelid = c.oid)", literal(name))
	w.line("      ORDER BY 1, 2 LOOP")
	w.line("    EXECUTE format('ALTER PUBLICATION %%I ADD TABLE ONLY %%I.%%I', %s, r.nspname, r.relname);", literal(name))
	w.line("  END LOOP;")
	w.endDo()
}

// schemaFilter is the SQL condition on n (pg_namespace) for the synced
// schemas.
func schemaFilter(sel selection) string {
	if len(sel.IncludeSchemas) == 0 {
		return "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'"
	}
	q := make([]string, len(sel.IncludeSchemas))
	for i, s := range sel.IncludeSchemas {
		q[i] = literal(s)
	}
	return "n.nspname IN (" + strings.Join(q, ", ") + ")"
}

// excludeFilters turns sync.exclude_tables into SQL conditions on n and c
// that hold for the tables selection.Includes leaves out.
func excludeFilters(patterns []string) []string {
	var out []string
	for _, pat := range patterns {
		ps, pt, qualified := cutLast(pat)
		if !qualified {
			pt = pat
		}
		cond := "c.relname ~ " + literal(globRegexp(pt))
		if qualified {
			cond = "n.nspname ~ " + literal(globRegexp(ps)) + " AND " + cond
		}
		out = append(out, cond)
	}
	return out
}

// globRegexp turns a path.Match pattern into an anchored POSIX regular
// expression matching the same names; a malformed pattern matches only
// itself, as match treats it.
func globRegexp(pat string) string {
	if _, err := path.Match(pat, ""); err != nil {
		return "^" + regexp.QuoteMeta(pat) + "$"
	}
	var b strings.Builder
	b.WriteByte('^')
	for i := 0; i < len(pat); i++ {
		switch pat[i] {
		case '*':
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '\\':
			i++
			b.WriteString(regexp.QuoteMeta(pat[i : i+1]))
		case '[':
			j := i + 1
			b.WriteByte('[')
			if j < len(pat) && pat[j] == '^' {
				b.WriteByte('^')
				j++
			}
			for ; pat[j] != ']'; j++ {
				if pat[j] == '\\' {
					j++
				}
				if strings.ContainsRune(`\]^[`, rune(pat[j])) {
					b.WriteByte('\\')
				}
				b.WriteByte(pat[j])
			}
			b.WriteByte(']')
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(pat[i : i+1]))
		}
	}
	b.WriteByte('$')
	return b.String()
}

func ident(s string) string   { return pgx.Identifier{s}.Sanitize() }
func literal(s string) string { return quoteLiteral(s) }

// shellWord quotes s for the psql example line when it needs it.
func shellWord(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_.-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
