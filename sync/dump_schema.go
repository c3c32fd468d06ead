package twinsync

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// The schema travels as a schema-only custom-format archive in a private
// temp dir: DDL only, never a row. The custom format lets pg_restore drop
// entries the owner role may not run, and restore post-data in parallel.

// dumpSchema runs pg_dump --schema-only in the coordinator's snapshot, so the
// schema and the rows are of the same moment.
func (r *run) dumpSchema(ctx context.Context) error {
	dir, err := os.MkdirTemp(r.d.TempDir, "pgtwin-schema-")
	if err != nil {
		return fmt.Errorf("schema dump: %w", err)
	}
	r.dir = dir
	r.archive = filepath.Join(dir, "schema.dump")
	connStr, env, err := r.d.Source.toolConn()
	if err != nil {
		return err
	}
	args := []string{"--format=custom", "--file=" + r.archive, "--schema-only",
		"--no-owner", "--no-publications", "--no-subscriptions",
		"--no-security-labels", "--snapshot=" + r.coord.snapshot}
	for _, s := range r.d.Selection.IncludeSchemas {
		args = append(args, "--schema="+quotePattern(s))
	}
	args = append(args, "--dbname="+connStr)
	return r.d.Backoff.retry(ctx, r.log, "pg_dump", func() error {
		return runTool(ctx, filepath.Join(r.binDir, "pg_dump"), args, env, "pg_dump schema")
	})
}

// quotePattern makes a pg_dump pattern match exactly this name.
func quotePattern(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// restorePreData creates the extensions and the roles grants name as the
// superuser, then restores the pre-data section (grants included) as the
// owner role so every object is owned by it.
func (r *run) restorePreData(ctx context.Context) error {
	if err := r.refuseMissingExtensions(ctx); err != nil {
		return err
	}
	missing, err := r.createExtensions(ctx)
	if err != nil {
		return err
	}
	if err := r.createSourceRoles(ctx); err != nil {
		return err
	}
	existing, err := r.targetSchemas(ctx)
	if err != nil {
		return err
	}
	list, err := r.tocList(ctx, func(e tocEntry) bool {
		switch {
		case e.desc == "EXTENSION", e.desc == "COMMENT" && strings.HasPrefix(e.tag, "EXTENSION "):
			return false // made by the superuser above; the owner role may not comment on them
		case e.desc == "SCHEMA" && existing[e.tag]:
			return false
		case r.skipDefaultACL(e):
			return false
		}
		return true
	}, "pre.list")
	if err != nil {
		return err
	}
	err = r.restore(ctx, "pre-data", list, "--single-transaction")
	if err != nil && len(missing) > 0 {
		return fmt.Errorf("%w (the source uses extensions this host lacks: %s)", err, strings.Join(missing, "; "))
	}
	if err != nil {
		return err
	}
	if err := r.liftForcedRowSecurity(ctx); err != nil {
		return err
	}
	return r.largeObjects(ctx)
}

// restorePostData restores the post-data section less the entries built
// early (the dump ids in skip), with sync.parallel sessions.
func (r *run) restorePostData(ctx context.Context, skip map[int]bool) error {
	list, err := r.tocList(ctx, func(e tocEntry) bool {
		if e.desc == "EVENT TRIGGER" || e.desc == "COMMENT" && strings.HasPrefix(e.tag, "EVENT TRIGGER ") {
			r.log.Warn().Str(logkey.Object, "event trigger "+e.tag).Msg("event trigger not restored: it needs a superuser")
			return false
		}
		if ref, ok := parseTOCRef(e.line); ok && skip[ref.id] {
			return false
		}
		return true
	}, "post.list")
	if err != nil {
		return err
	}
	if err := r.restoreList(ctx, "post-data", list, r.parallel, "pg_restore post-data"); err != nil {
		return err
	}
	if err := r.refreshMatviews(ctx); err != nil {
		return err
	}
	return r.restoreForcedRowSecurity(ctx)
}

// refreshMatviews fills the materialized views, which a schema-only dump
// leaves unpopulated, from the twin's (masked) rows. One may read another,
// so what fails for want of an unpopulated one is tried again next round.
func (r *run) refreshMatviews(ctx context.Context) error {
	rows, err := r.tgtConn.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm' AND NOT c.relispopulated ORDER BY c.oid`)
	if err != nil {
		return fmt.Errorf("list materialized views: %w", err)
	}
	pending, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list materialized views: %w", err)
	}
	if len(pending) == 0 {
		return nil
	}
	if _, err := r.tgtConn.Exec(ctx, "SET ROLE "+pgx.Identifier{r.tgt.Owner}.Sanitize()); err != nil {
		return fmt.Errorf("refresh materialized views: %w", err)
	}
	defer r.tgtConn.Exec(context.Background(), "RESET ROLE")
	for len(pending) > 0 {
		var again []string
		var lastErr error
		for _, mv := range pending {
			if _, err := r.tgtConn.Exec(ctx, "REFRESH MATERIALIZED VIEW "+mv); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				again, lastErr = append(again, mv), fmt.Errorf("refresh materialized view %s: %w", mv, redact(err))
			}
		}
		if len(again) == len(pending) {
			return lastErr
		}
		pending = again
	}
	return nil
}

func (r *run) restore(ctx context.Context, section, list string, extra ...string) error {
	args := append([]string{"--section=" + section, "--use-list=" + list, "--no-owner",
		"--no-tablespaces", "--no-security-labels", "--role=" + r.tgt.Owner, "--exit-on-error",
		"--dbname=" + r.tgt.ConnString}, extra...)
	// Grants come with their objects, in pre-data; what pg_restore counts
	// into later sections is default privileges, which the twin leaves out.
	if section != "pre-data" {
		args = append(args, "--no-privileges")
	}
	args = append(args, r.archive)
	// Index builds are most of post-data; give them memory, and nothing here
	// needs to survive a crash before the run's final snapshot.
	env := append(os.Environ(), "PGOPTIONS=-c maintenance_work_mem=256MB -c synchronous_commit=off")
	return runTool(ctx, filepath.Join(r.binDir, "pg_restore"), args, env, "pg_restore "+section)
}

// tocEntry is one line of `pg_restore --list`.
type tocEntry struct {
	line string
	desc string // TABLE, SCHEMA, COMMENT, EVENT TRIGGER, ...
	tag  string // the object's name; for COMMENT, "EXTENSION x" and the like
}

// Descriptions with a space, longest first; the rest are one word.
var tocDescs = []string{"MATERIALIZED VIEW DATA", "SEQUENCE OWNED BY", "SEQUENCE SET", "EVENT TRIGGER",
	"MATERIALIZED VIEW", "DEFAULT ACL", "TABLE DATA", "TABLE ATTACH", "INDEX ATTACH", "FK CONSTRAINT",
	"TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE",
	"FOREIGN TABLE", "FOREIGN DATA WRAPPER", "SERVER", "USER MAPPING", "LARGE OBJECT", "BLOB", "ACCESS METHOD",
	"OPERATOR CLASS", "OPERATOR FAMILY", "PROCEDURAL LANGUAGE", "SHELL TYPE", "DATABASE PROPERTIES"}

// parseTOC parses "ID; TABLEOID OID DESC NAMESPACE TAG OWNER".
func parseTOC(line string) (tocEntry, bool) {
	e := tocEntry{line: line}
	_, rest, ok := strings.Cut(line, "; ")
	if !ok || strings.HasPrefix(line, ";") {
		return e, false
	}
	f := strings.SplitN(rest, " ", 3) // tableoid, oid, the rest
	if len(f) < 3 {
		return e, false
	}
	rest = f[2]
	e.desc, rest, _ = strings.Cut(rest, " ")
	for _, d := range tocDescs {
		if strings.HasPrefix(f[2], d+" ") {
			e.desc, rest = d, f[2][len(d)+1:]
			break
		}
	}
	// NAMESPACE TAG OWNER: the namespace is one token ("-" when none); the
	// owner is the last token.
	_, rest, _ = strings.Cut(rest, " ")
	if i := strings.LastIndexByte(strings.TrimRight(rest, " "), ' '); i >= 0 && e.desc != "COMMENT" {
		rest = rest[:i]
	}
	e.tag = strings.TrimSpace(rest)
	return e, true
}

// tocList writes the archive's table of contents, less what keep rejects,
// as a pg_restore --use-list file.
func (r *run) tocList(ctx context.Context, keep func(tocEntry) bool, name string) (string, error) {
	out, err := toolOutput(ctx, filepath.Join(r.binDir, "pg_restore"), []string{"--list", r.archive}, "pg_restore --list")
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		if e, ok := parseTOC(sc.Text()); ok && !keep(e) {
			continue
		}
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	p := filepath.Join(r.dir, name)
	return p, os.WriteFile(p, b.Bytes(), 0o600)
}

// targetSchemas lists the target's schemas, whose CREATE SCHEMA must be
// skipped.
func (r *run) targetSchemas(ctx context.Context) (map[string]bool, error) {
	rows, err := r.tgtConn.Query(ctx, "SELECT nspname FROM pg_catalog.pg_namespace")
	if err != nil {
		return nil, fmt.Errorf("target schemas: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("target schemas: %w", err)
	}
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m, nil
}

// createExtensions creates the source's extensions in the target as the
// superuser (the owner role may not), in the same schemas. It returns the
// ones that could not be created; the restore names them if it then fails.
func (r *run) createExtensions(ctx context.Context) (missing []string, err error) {
	rows, err := r.src.Query(ctx, `SELECT e.extname, n.nspname FROM pg_catalog.pg_extension e
		JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY e.oid`)
	if err != nil {
		return nil, fmt.Errorf("source extensions: %w", err)
	}
	type ext struct{ name, schema string }
	exts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ext, error) {
		var e ext
		return e, row.Scan(&e.name, &e.schema)
	})
	if err != nil {
		return nil, fmt.Errorf("source extensions: %w", err)
	}
	owner := pgx.Identifier{r.tgt.Owner}.Sanitize()
	for _, e := range exts {
		schema := pgx.Identifier{e.schema}.Sanitize()
		_, err := r.tgtConn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema+" AUTHORIZATION "+owner)
		if err == nil {
			_, err = r.tgtConn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+pgx.Identifier{e.name}.Sanitize()+" WITH SCHEMA "+schema)
		}
		if err != nil {
			r.log.Warn().Err(redact(err)).Str(logkey.Extension, e.name).Msg("extension not available on this host")
			missing = append(missing, fmt.Sprintf("%s (%s)", e.name, redact(err)))
		}
	}
	return missing, nil
}

// syncSequences sets every target sequence to the source's value. Read after
// the copy, the values are at least those of the snapshot, so new rows in
// the twin never collide with copied ones.
func (r *run) syncSequences(ctx context.Context) error {
	rows, err := r.tgtConn.Query(ctx, `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("target sequences: %w", err)
	}
	type seq struct{ schema, name string }
	seqs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (seq, error) {
		var s seq
		return s, row.Scan(&s.schema, &s.name)
	})
	if err != nil {
		return fmt.Errorf("target sequences: %w", err)
	}
	if len(seqs) == 0 {
		return nil
	}
	// The plain source session may have been idle for the whole copy; a
	// fresh one rides out a source restart in between.
	src, err := r.d.connectSource(ctx)
	if err != nil {
		return err
	}
	defer src.Close(context.Background())
	for _, s := range seqs {
		q := pgx.Identifier{s.schema, s.name}.Sanitize()
		var last int64
		var called bool
		if err := src.QueryRow(ctx, "SELECT last_value, is_called FROM "+q).Scan(&last, &called); err != nil {
			return fmt.Errorf("read source sequence %s: %w", q, err)
		}
		if _, err := r.tgtConn.Exec(ctx, "SELECT pg_catalog.setval($1::regclass, $2, $3)", q, last, called); err != nil {
			return fmt.Errorf("set sequence %s: %w", q, err)
		}
	}
	return nil
}

// runTool runs a PostgreSQL client program by argv and turns a failure into
// an error quoting its (redacted) stderr.
func runTool(ctx context.Context, bin string, args, env []string, what string) error {
	_, err := toolCmd(ctx, bin, args, env, what)
	return err
}

func toolOutput(ctx context.Context, bin string, args []string, what string) ([]byte, error) {
	return toolCmd(ctx, bin, args, nil, what)
}

func toolCmd(ctx context.Context, bin string, args, env []string, what string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := redactText(stderr.String())
		var te error = &toolError{what: what, err: err, stderr: msg}
		return nil, te
	}
	return out, nil
}

// toolError is a client program's failure; connection failures are
// retriable like a driver's.
type toolError struct {
	what, stderr string
	err          error
}

func (e *toolError) Error() string {
	if e.stderr == "" {
		return e.what + ": " + e.err.Error()
	}
	return e.what + ": " + e.err.Error() + ": " + e.stderr
}

func (e *toolError) Unwrap() error { return e.err }

func (e *toolError) connectionFault() bool {
	for _, s := range []string{"could not connect", "connection to server", "server closed the connection",
		"terminating connection", "the database system is starting up", "the database system is shutting down",
		"Connection refused", "no connection to the server"} {
		if strings.Contains(e.stderr, s) {
			return true
		}
	}
	return false
}
