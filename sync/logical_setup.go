package twinsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/anonymize"
)

// errSourceNotReady is returned (wrapped) when the source lacks a setting or
// privilege that logical sync needs; the message says what to change.
var errSourceNotReady = errors.New("the source is not ready for logical sync")

// checkSource checks that the source can feed a logical sync of the
// selected tables: wal_level, the replication privilege (or RDS's
// rds_replication role), and a replica identity for every table, so that
// publishing them never makes an UPDATE or DELETE fail on the source.
func checkSource(ctx context.Context, conn *pgx.Conn, sel selection) error {
	var problems []string
	var walLevel string
	if err := conn.QueryRow(ctx, "SELECT current_setting('wal_level')").Scan(&walLevel); err != nil {
		return fmt.Errorf("check source: %w", redact(err))
	}
	var rdsLogical *string
	_ = conn.QueryRow(ctx, "SELECT current_setting('rds.logical_replication', true)").Scan(&rdsLogical)
	isRDS := rdsLogical != nil && *rdsLogical != ""
	if walLevel != "logical" {
		if isRDS {
			problems = append(problems, fmt.Sprintf("wal_level is %s: set rds.logical_replication = 1 in the instance's parameter group and reboot it", walLevel))
		} else {
			problems = append(problems, fmt.Sprintf("wal_level is %s: set wal_level = logical in postgresql.conf (ALTER SYSTEM SET wal_level = logical) and restart the server", walLevel))
		}
	}
	var user string
	var super, repl, rdsRepl bool
	err := conn.QueryRow(ctx, `SELECT current_user, r.rolsuper, r.rolreplication,
		EXISTS (SELECT 1 FROM pg_catalog.pg_roles g WHERE g.rolname = 'rds_replication' AND pg_catalog.pg_has_role(current_user, g.oid, 'member'))
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(&user, &super, &repl, &rdsRepl)
	if err != nil {
		return fmt.Errorf("check source: %w", redact(err))
	}
	if !super && !repl && !rdsRepl {
		if isRDS {
			problems = append(problems, fmt.Sprintf("role %s may not replicate: GRANT rds_replication TO %s (`pgtwin sync setup-sql` prints it with the other grants)", user, pgx.Identifier{user}.Sanitize()))
		} else {
			problems = append(problems, fmt.Sprintf("role %s may not replicate: ALTER ROLE %s REPLICATION (`pgtwin sync setup-sql` prints it with the other grants)", user, pgx.Identifier{user}.Sanitize()))
		}
	}
	tables, err := sourceTables(ctx, conn, sel)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t.identity == "n" || t.identity == "d" && !t.hasPK {
			problems = append(problems, fmt.Sprintf("table %s has no primary key and REPLICA IDENTITY %s, so UPDATE and DELETE on it would fail once published: add a primary key, or run ALTER TABLE %s REPLICA IDENTITY FULL",
				t.qname(), map[string]string{"n": "NOTHING", "d": "DEFAULT"}[t.identity], t.qname()))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w:\n  %s", errSourceNotReady, strings.Join(problems, "\n  "))
	}
	return nil
}

type sourceTable struct {
	schema, name string
	identity     string // pg_class.relreplident
	hasPK        bool
	partition    bool
}

func (t sourceTable) qname() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// sourceTables lists the selected leaf tables, as the dump copy does.
func sourceTables(ctx context.Context, conn *pgx.Conn, sel selection) ([]sourceTable, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname, c.relreplident::text,
			EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), c.relispartition
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence = 'p'
			AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
				AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list source tables: %w", redact(err))
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sourceTable, error) {
		var t sourceTable
		return t, row.Scan(&t.schema, &t.name, &t.identity, &t.hasPK, &t.partition)
	})
	if err != nil {
		return nil, fmt.Errorf("list source tables: %w", redact(err))
	}
	var out []sourceTable
	for _, t := range all {
		if sel.Includes(t.schema, t.name) {
			out = append(out, t)
		}
	}
	return out, nil
}

// errPublicationMissing is returned (wrapped) when sync.publication names a
// publication the source does not have.
var errPublicationMissing = errors.New("publication missing")

// ensurePublication makes the publication pgtwin manages list exactly the
// selected tables. A configured publication (UsePublication) is used as it
// is: it is never created, altered or dropped here.
func (f *follower) ensurePublication(ctx context.Context, conn *pgx.Conn) error {
	if f.UsePublication {
		return nil
	}
	tables, err := sourceTables(ctx, conn, f.Selection)
	if err != nil {
		return err
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		// ONLY: an inheritance parent must not drag in excluded children.
		names[i] = "ONLY " + t.qname()
	}
	pub := pgx.Identifier{f.Publication}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)", f.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("publication %s: %w", f.Publication, redact(err))
	}
	var sql string
	switch {
	case !exists && len(names) == 0:
		sql = "CREATE PUBLICATION " + pub
	case !exists:
		sql = "CREATE PUBLICATION " + pub + " FOR TABLE " + strings.Join(names, ", ")
	case len(names) == 0:
		// SET TABLE needs at least one; drop and make an empty one.
		sql = "DROP PUBLICATION " + pub + "; CREATE PUBLICATION " + pub
	default:
		sql = "ALTER PUBLICATION " + pub + " SET TABLE " + strings.Join(names, ", ")
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		if classify(err) == errInsufficientPrivilege {
			var user string
			_ = conn.QueryRow(ctx, "SELECT current_user").Scan(&user)
			return fmt.Errorf("role %s may not create or alter publication %s on the source (%s): %s, and set sync.publication = %q so that pgtwin uses that publication as it is",
				user, f.Publication, pgMessage(err), setupSQLHint, f.Publication)
		}
		return fmt.Errorf("publication %s: %w", f.Publication, redact(err))
	}
	return nil
}

// pgMessage is a server error's message alone, without its SQLSTATE.
func pgMessage(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	return redact(err).Error()
}

// syncedSelection returns what the follower syncs: its Selection, narrowed
// for a configured publication to the tables that publication holds. It is
// read from the source once per initial copy (refresh) and at the first
// plan after a start, then kept, so the stream skips what the copy left out.
func (f *follower) syncedSelection(ctx context.Context, conn *pgx.Conn, refresh bool) (selection, error) {
	f.mu.Lock()
	cached := f.synced
	f.mu.Unlock()
	if cached != nil && !refresh {
		return *cached, nil
	}
	sel, warnings := f.Selection, []string(nil)
	if f.UsePublication {
		var err error
		if sel, warnings, err = publishedSelection(ctx, conn, f.Publication, f.Selection); err != nil {
			return selection{}, err
		}
		if !refresh {
			// Following main as an earlier initial copy left it: what
			// that copy left out stays out, though it joined since.
			if sel, warnings, err = f.addRecordedOutside(ctx, sel, warnings); err != nil {
				return selection{}, err
			}
		}
	}
	log := f.logger()
	for _, w := range warnings {
		log.Warn().Msg(w)
	}
	f.mu.Lock()
	f.synced, f.warnings = &sel, warnings
	f.mu.Unlock()
	return sel, nil
}

// syncing reports whether the stream applies changes of schema.table: false
// for a table a configured publication sends but the sync leaves out.
func (f *follower) syncing(schema, table string) bool {
	f.mu.Lock()
	sel := f.Selection
	if f.synced != nil {
		sel = *f.synced
	}
	f.mu.Unlock()
	return sel.Includes(schema, table)
}

// planSynced is logical mode's Plan hook: the masking plan (anonymizePlan)
// of the tables the follower syncs.
func planSynced(f *follower, rules anonymize.Rules, policy string, key []byte) func(context.Context, *pgx.Conn) (masker, error) {
	return func(ctx context.Context, conn *pgx.Conn) (masker, error) {
		sel, err := f.syncedSelection(ctx, conn, false)
		if err != nil {
			return nil, err
		}
		return anonymizePlan(rules, policy, key, sel)(ctx, conn)
	}
}

// maskSelection is the selection `mask plan` shows, and the warnings it
// prints above the plan, read afresh through a connection of its own.
func (f *follower) maskSelection(ctx context.Context, b backoff) (selection, []string, error) {
	if !f.UsePublication {
		return f.Selection, nil, nil
	}
	d := &dumper{Source: f.Source, Backoff: b, Log: f.Log}
	conn, err := d.connectSource(ctx)
	if err != nil {
		return selection{}, nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	sel, warnings, err := publishedSelection(ctx, conn, f.Publication, f.Selection)
	if err != nil {
		return selection{}, nil, err
	}
	// What the follower leaves out stays out though the publication has
	// gained it since the initial copy.
	f.mu.Lock()
	var following map[string]bool
	if f.synced != nil {
		following = f.synced.outside
	}
	f.mu.Unlock()
	var keys []string
	for key := range following {
		if !sel.outside[key] {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		if sel.outside == nil {
			sel.outside = map[string]bool{}
		}
		sel.outside[key] = true
		schema, name, _ := strings.Cut(key, "\x00")
		warnings = append(warnings, joinedWarning(schema, name, f.Publication))
	}
	return sel, warnings, nil
}

// outsideWarning says that selected table t is not in publication pub.
func outsideWarning(t sourceTable, pub string) string {
	q := pgx.Identifier{pub}.Sanitize()
	return fmt.Sprintf("table %s is not in publication %s, so logical sync copies none of its rows: add it (as its owner, ALTER PUBLICATION %s ADD TABLE ONLY %s, or run the SQL of `pgtwin sync setup-sql` again) and resync (pgtwin sync now --resync), or list it in sync.exclude_tables",
		t.qname(), q, q, t.qname())
}

// joinedWarning says that schema.name, which the initial copy left out, is
// in publication pub now and waits for a resync.
func joinedWarning(schema, name, pub string) string {
	return fmt.Sprintf("table %s joined publication %s after the initial copy, which left it out, so logical sync keeps leaving it out until a resync copies it (pgtwin sync now --resync)",
		pgx.Identifier{schema, name}.Sanitize(), pgx.Identifier{pub}.Sanitize())
}

// publishedSelection narrows sel to the tables of the existing publication
// pub and returns a warning for each selected table it leaves out, and for
// what else makes the twin see less than the source: actions it does not
// publish, row filters and column lists. A publication that publishes
// partitions as their root is refused: its changes name tables the plan
// does not know.
func publishedSelection(ctx context.Context, conn *pgx.Conn, pub string, sel selection) (selection, []string, error) {
	var viaRoot, ins, upd, del, trunc bool
	err := conn.QueryRow(ctx, `SELECT pubviaroot, pubinsert, pubupdate, pubdelete, pubtruncate
		FROM pg_catalog.pg_publication WHERE pubname = $1`, pub).Scan(&viaRoot, &ins, &upd, &del, &trunc)
	if errors.Is(err, pgx.ErrNoRows) {
		return selection{}, nil, fmt.Errorf("%w: sync.publication names publication %s, which the source database does not have: %s (it creates the publication), or correct sync.publication",
			errPublicationMissing, pgx.Identifier{pub}.Sanitize(), setupSQLHint)
	}
	if err != nil {
		return selection{}, nil, fmt.Errorf("publication %s: %w", pub, redact(err))
	}
	tables, err := sourceTables(ctx, conn, sel)
	if err != nil {
		return selection{}, nil, err
	}
	version, err := serverMajor(ctx, conn)
	if err != nil {
		return selection{}, nil, err
	}
	// Row filters and column lists came with PostgreSQL 15.
	extra := "false, false"
	if version >= 150000 {
		extra = "pt.rowfilter IS NOT NULL, pt.attnames IS NOT NULL AND cardinality(pt.attnames) < (SELECT count(*) FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)"
	}
	rows, err := conn.Query(ctx, `SELECT pt.schemaname::text, pt.tablename::text, `+extra+`
		FROM pg_catalog.pg_publication_tables pt
			JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname
			JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
		WHERE pt.pubname = $1`, pub)
	if err != nil {
		return selection{}, nil, fmt.Errorf("publication %s: tables: %w", pub, redact(err))
	}
	type pubTable struct{ filtered, someColumns bool }
	published := map[string]pubTable{}
	var schema, name string
	var pt pubTable
	if _, err := pgx.ForEachRow(rows, []any{&schema, &name, &pt.filtered, &pt.someColumns}, func() error {
		published[schema+"\x00"+name] = pt
		return nil
	}); err != nil {
		return selection{}, nil, fmt.Errorf("publication %s: tables: %w", pub, redact(err))
	}
	q := pgx.Identifier{pub}.Sanitize()
	var warnings []string
	var missing []string
	for _, a := range []struct {
		on   bool
		name string
	}{{ins, "insert"}, {upd, "update"}, {del, "delete"}, {trunc, "truncate"}} {
		if !a.on {
			missing = append(missing, a.name)
		}
	}
	if len(missing) > 0 {
		warnings = append(warnings, fmt.Sprintf("publication %s does not publish %s, so the twin never sees them: ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate')",
			q, strings.Join(missing, ", "), q))
	}
	outside := map[string]bool{}
	for _, t := range tables {
		key := t.schema + "\x00" + t.name
		p, ok := published[key]
		switch {
		case t.partition && viaRoot:
			return selection{}, nil, fmt.Errorf("publication %s publishes partitions as their root (publish_via_partition_root), which logical sync cannot follow: ALTER PUBLICATION %s SET (publish_via_partition_root = false), or use another publication", q, q)
		case !ok:
			outside[key] = true
			warnings = append(warnings, outsideWarning(t, pub))
		case p.filtered:
			warnings = append(warnings, fmt.Sprintf("table %s is published with a row filter, so the twin misses changes to rows it does not pass", t.qname()))
		case p.someColumns:
			warnings = append(warnings, fmt.Sprintf("table %s is published with a column list, so the twin misses changes to its other columns", t.qname()))
		}
	}
	if len(outside) > 0 {
		sel.outside = outside
	}
	return sel, warnings, nil
}

// dropSlot drops the slot if it exists, waiting for a walsender still using
// it to let go.
func (f *follower) dropSlotSQL(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots
		WHERE slot_name = $1 AND database = current_database()`, f.Slot)
	if err != nil {
		if classify(err) == errObjectInUse {
			_, err = conn.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(active_pid) FROM pg_catalog.pg_replication_slots
				WHERE slot_name = $1 AND active_pid IS NOT NULL`, f.Slot)
			if err == nil {
				_, err = conn.Exec(ctx, `SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots
					WHERE slot_name = $1`, f.Slot)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("drop slot %s: %w", f.Slot, redact(err))
	}
	return nil
}

// DropSlot drops the follower's slot on the source (`sync stop
// --drop-slot`), so the source stops keeping WAL for it. Stop first.
func (f *follower) DropSlot(ctx context.Context) error {
	f.defaults()
	conn, err := f.dumper().connectSource(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return f.dropSlotSQL(ctx, conn)
}

func (f *follower) dumper() *dumper {
	return &dumper{Source: f.Source, Parallel: f.Parallel, Selection: f.Selection, Plan: f.Plan,
		Backoff: f.Backoff, Log: f.Log, TempDir: f.TempDir}
}

// warningLines prints warnings above the plan text.
func warningLines(warnings []string) string {
	var b strings.Builder
	for _, w := range warnings {
		b.WriteString("warning: " + w + "\n")
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// outsideDDL records, in the twin, the selected tables the initial copy
// left out because the configured publication did not hold them: a table
// added to the publication later has no rows in the twin, so the stream
// must keep leaving it out until a resync copies it.
const outsideDDL = `CREATE SCHEMA IF NOT EXISTS pgtwin_sync;
CREATE TABLE IF NOT EXISTS pgtwin_sync.outside (
	slot text NOT NULL,
	schema_name text NOT NULL,
	table_name text NOT NULL,
	PRIMARY KEY (slot, schema_name, table_name)
)`

// recordOutside writes sel's outside tables for slot into the twin.
func recordOutside(ctx context.Context, conn *pgx.Conn, slot string, sel selection) error {
	var schemas, names []string
	for key := range sel.outside {
		s, n, _ := strings.Cut(key, "\x00")
		schemas, names = append(schemas, s), append(names, n)
	}
	if _, err := conn.Exec(ctx, outsideDDL); err != nil {
		return fmt.Errorf("record tables outside the publication: %w", redact(err))
	}
	if _, err := conn.Exec(ctx, `DELETE FROM pgtwin_sync.outside WHERE slot = $1`, slot); err != nil {
		return fmt.Errorf("record tables outside the publication: %w", redact(err))
	}
	if _, err := conn.Exec(ctx, `INSERT INTO pgtwin_sync.outside SELECT $1, s, n FROM unnest($2::text[], $3::text[]) u (s, n)`,
		slot, schemas, names); err != nil {
		return fmt.Errorf("record tables outside the publication: %w", redact(err))
	}
	return nil
}

// addRecordedOutside adds to sel the tables the twin's initial copy left
// out (recordOutside) that the publication has gained since, with a
// warning for each.
func (f *follower) addRecordedOutside(ctx context.Context, sel selection, warnings []string) (selection, []string, error) {
	if f.TargetConn == nil {
		return sel, warnings, nil
	}
	cs, err := f.TargetConn(ctx)
	if err != nil {
		return sel, warnings, err
	}
	conn, err := pgx.Connect(ctx, cs)
	if err != nil {
		return sel, warnings, fmt.Errorf("connect to the twin: %w", redact(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var recorded bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('pgtwin_sync.outside') IS NOT NULL").Scan(&recorded); err != nil {
		return sel, warnings, fmt.Errorf("read tables outside the publication: %w", redact(err))
	}
	if !recorded { // filled before the record existed
		return sel, warnings, nil
	}
	rows, err := conn.Query(ctx, `SELECT schema_name, table_name FROM pgtwin_sync.outside WHERE slot = $1 ORDER BY 1, 2`, f.Slot)
	if err != nil {
		return sel, warnings, fmt.Errorf("read tables outside the publication: %w", redact(err))
	}
	var schema, name string
	outside := map[string]bool{}
	for key := range sel.outside {
		outside[key] = true
	}
	_, err = pgx.ForEachRow(rows, []any{&schema, &name}, func() error {
		key := schema + "\x00" + name
		if outside[key] || !sel.Includes(schema, name) {
			return nil
		}
		outside[key] = true
		warnings = append(warnings, joinedWarning(schema, name, f.Publication))
		return nil
	})
	if err != nil {
		return sel, warnings, fmt.Errorf("read tables outside the publication: %w", redact(err))
	}
	if len(outside) > 0 {
		sel.outside = outside
	}
	return sel, warnings, nil
}
