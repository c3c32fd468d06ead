package twinsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// source says how to reach the source database: config [source].
type source struct {
	// URL is a libpq URL or keyword/value string.
	URL string
	// PasswordFile, when set, holds the password (first line). Otherwise the
	// password comes from the URL, PGPASSWORD or ~/.pgpass, as libpq does.
	PasswordFile string
}

// Database is the source database's name: the URL's, else the user's, as
// libpq defaults it. The twin names its database after it.
func (s source) Database() (string, error) {
	cfg, err := pgconn.ParseConfig(s.URL)
	if err != nil {
		return "", fmt.Errorf("source url: %w", redactURLError(err))
	}
	if cfg.Database != "" {
		return cfg.Database, nil
	}
	return cfg.User, nil
}

// password returns the password from PasswordFile, or "" when none is set.
func (s source) password() (string, error) {
	if s.PasswordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("source password file: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return strings.TrimSuffix(string(line), "\r"), nil
}

// connConfig parses the URL for pgx, applying the password file and the
// session settings every source connection needs.
func (s source) connConfig() (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(s.URL)
	if err != nil {
		return nil, fmt.Errorf("source url: %w", redactURLError(err))
	}
	pw, err := s.password()
	if err != nil {
		return nil, err
	}
	if pw != "" {
		cfg.Password = pw
	}
	// As pg_dump does: no timeouts cutting a long COPY, floats exact, dates
	// unambiguous, row security an error rather than silently fewer rows,
	// and a search_path of pg_catalog alone, so no object of the source's
	// schemas shadows a built-in and format_type spells every other type
	// with its schema, as it does in the twin's pinned sessions.
	for k, v := range map[string]string{
		"search_path":                         "pg_catalog",
		"statement_timeout":                   "0",
		"lock_timeout":                        "0",
		"idle_in_transaction_session_timeout": "0",
		"extra_float_digits":                  "3",
		"DateStyle":                           "ISO",
		"IntervalStyle":                       "postgres",
		"row_security":                        "off",
		"application_name":                    "pgtwin sync",
	} {
		cfg.RuntimeParams[k] = v
	}
	return cfg, nil
}

var urlPassword = regexp.MustCompile(`(://[^:/@]*:)[^@]*@`)

// redactURLError keeps a password written in the URL out of parse errors,
// which pgconn builds from the whole string.
func redactURLError(err error) error {
	return errors.New(urlPassword.ReplaceAllString(err.Error(), "${1}xxxxx@"))
}

// toolConn returns the connection string and environment for pg_dump, with
// any password moved out of argv (where ps shows it) into PGPASSWORD.
func (s source) toolConn() (connStr string, env []string, err error) {
	connStr = s.URL
	pw, err := s.password()
	if err != nil {
		return "", nil, err
	}
	if strings.HasPrefix(s.URL, "postgres://") || strings.HasPrefix(s.URL, "postgresql://") {
		u, perr := url.Parse(s.URL)
		if perr != nil {
			return "", nil, fmt.Errorf("source url: %w", redactURLError(perr))
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				if pw == "" {
					pw = p
				}
				u.User = url.User(u.User.Username())
			}
		}
		q := u.Query()
		if p := q.Get("password"); p != "" {
			if pw == "" {
				pw = p
			}
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		connStr = u.String()
	}
	env = os.Environ()
	if pw != "" {
		env = append(env, "PGPASSWORD="+pw)
	}
	return connStr, env, nil
}

// serverMajor reads the server's major version (e.g. 15, or 9 for 9.6).
func serverMajor(ctx context.Context, conn *pgx.Conn) (num int, err error) {
	var s string
	if err := conn.QueryRow(ctx, "SHOW server_version_num").Scan(&s); err != nil {
		return 0, fmt.Errorf("read server version: %w", err)
	}
	num, err = strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("read server version: %q: %w", s, err)
	}
	return num, nil
}

func majorOf(versionNum int) int {
	if versionNum >= 100000 {
		return versionNum / 10000
	}
	return versionNum / 100 // 9.6 → 96: older than anything pg_dump 15 needs to special-case here
}

var toolVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// toolMajor runs `<bin> --version` and returns its major version.
func toolMajor(ctx context.Context, bin string) (int, error) {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("%s --version: %w", bin, err)
	}
	m := toolVersion.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("%s --version: unexpected output %q", bin, strings.TrimSpace(string(out)))
	}
	major, _ := strconv.Atoi(string(m[1]))
	if major < 10 && m[2] != nil {
		minor, _ := strconv.Atoi(string(m[2]))
		major = major*10 + minor
	}
	return major, nil
}

// minSourceVersion is the oldest source pgtwin syncs from (README,
// "Supported sources").
const minSourceVersion = 120000

func versionText(num int) string {
	if num >= 100000 {
		return strconv.Itoa(num / 10000)
	}
	return fmt.Sprintf("%d.%d", num/10000, num/100%100)
}

// checkDumpVersion fails unless the local pg_dump can dump a server of the
// given version, saying which client package to install.
func checkDumpVersion(ctx context.Context, binDir string, sourceVersionNum int) error {
	local, err := toolMajor(ctx, filepath.Join(binDir, "pg_dump"))
	if err != nil {
		return err
	}
	src := majorOf(sourceVersionNum)
	if sourceVersionNum < minSourceVersion {
		return fmt.Errorf("the source runs PostgreSQL %s, and pgtwin syncs from 12 or later (logical replication and pg_dump's catalog queries need it): upgrade the source", versionText(sourceVersionNum))
	}
	if local < src {
		return fmt.Errorf("pg_dump %d in %s cannot dump the source's PostgreSQL %d: install postgresql-client-%d (and postgresql-%d for the twin) and point engine.postgres_bin at it",
			local, binDir, src, src, src)
	}
	return nil
}

// findBinDir returns the newest directory with pg_dump and pg_restore: the
// Debian layout /usr/lib/postgresql/N/bin, else PATH.
func findBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_restore")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_dump"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return filepath.Dir(p), nil
	}
	return "", errors.New("pg_dump not found: install postgresql-client (the same major version as the source or newer)")
}

// setupSQLHint ends every error about a privilege the source role lacks.
const setupSQLHint = "have the source's superuser run the SQL that `pgtwin sync setup-sql` prints"

// checkReadAccess fails, before anything is copied, when the role cannot
// read what a sync reads: every table and sequence of the synced schemas
// (pg_dump locks each table whose definition it dumps, excluded ones too),
// and all rows of a table with row-level security (row_security is off, so
// such a table is an error rather than silently fewer rows).
func checkReadAccess(ctx context.Context, conn *pgx.Conn, sel selection) error {
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname, c.relkind::text,
			pg_catalog.has_schema_privilege(n.oid, 'USAGE'),
			CASE WHEN c.relkind = 'S' THEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT')
				ELSE pg_catalog.has_table_privilege(c.oid, 'SELECT') END,
			c.relrowsecurity AND NOT r.rolsuper AND NOT r.rolbypassrls
				AND (c.relforcerowsecurity OR NOT pg_catalog.pg_has_role(c.relowner, 'USAGE')),
			r.rolname
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_catalog.pg_roles r ON r.rolname = current_user
		WHERE c.relkind IN ('r', 'p', 'S') AND c.relpersistence <> 't'
			AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
				AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("check source privileges: %w", redact(err))
	}
	var user string
	var noUsage, noSelect, rls []string
	seen := map[string]bool{}
	var schema, name, kind string
	var usage, sel0, limited bool
	_, err = pgx.ForEachRow(rows, []any{&schema, &name, &kind, &usage, &sel0, &limited, &user}, func() error {
		if !sel.IncludesSchema(schema) {
			return nil
		}
		q := pgx.Identifier{schema, name}.Sanitize()
		if !usage && !seen[schema] {
			seen[schema] = true
			noUsage = append(noUsage, pgx.Identifier{schema}.Sanitize())
		}
		if !sel0 {
			noSelect = append(noSelect, q)
		}
		if limited && kind == "r" && sel.Includes(schema, name) {
			rls = append(rls, q)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check source privileges: %w", redact(err))
	}
	var problems []string
	if len(noUsage) > 0 {
		problems = append(problems, "no USAGE on schema "+listSome(noUsage))
	}
	if len(noSelect) > 0 {
		problems = append(problems, "no SELECT on "+listSome(noSelect))
	}
	if len(rls) > 0 {
		problems = append(problems, "row-level security hides rows of "+listSome(rls)+" (ALTER ROLE "+pgx.Identifier{user}.Sanitize()+" BYPASSRLS)")
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("role %s may not read everything the sync copies (%s): %s", user, strings.Join(problems, "; "), setupSQLHint)
}

// listSome joins up to ten names and says how many more there are.
func listSome(names []string) string {
	if len(names) <= 10 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:10], ", "), len(names)-10)
}
