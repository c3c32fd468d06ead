package twinsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// Re-copies run the way native table sync workers catch a table up: the
// table is marked "copy" in the twin (pgtwin_sync.relations.state) in the
// apply's transaction, and from then on the stream drops its changes while
// it applies every other table's. A copier (logical_recopy_copier.go)
// copies it from a temporary slot's snapshot, over connections of its own,
// and commits the rows with state "sync" at the snapshot's consistent
// point L in one twin transaction. The stream then applies the table's
// changes of transactions that commit at L or later; when it had gone past
// L meanwhile, the session starts again from L (the slot was not acked
// past the point where the copy began, so it still has that WAL), applies
// that table's changes only until it reaches where the twin was, and the
// table follows the progress again (logical_recopy_state.go).

// markCopy queues table relid for a copy from a fresh snapshot; its
// changes are dropped from now on. The mark is written in the open group:
// the copy begins once it is committed.
func (s *session) markCopy(ctx context.Context, relid uint32, schema, name, reason string) error {
	if d := s.ddl.det[relid]; d != nil && d.state == tableCopy {
		return nil
	}
	q := pgx.Identifier{schema, name}.Sanitize()
	if m := s.ddl.maps[relid]; m != nil {
		q = m.qname()
	}
	s.log.Warn().Str(logkey.Table, q).Str(logkey.Reason, reason).Msg("the stream cannot bring this table up to date: copying it again")
	if err := s.openGroup(ctx); err != nil {
		return err
	}
	if err := s.ap.flush(ctx); err != nil {
		return err
	}
	d := &detached{relid: relid, state: tableCopy, pos: s.acked, schema: schema, name: name, qname: q, reason: reason}
	if err := s.saveDetached(ctx, d); err != nil {
		return err
	}
	s.ddl.det[relid] = d
	s.ddl.marked = true
	s.warn(d)
	return nil
}

// reshape empties the twin's table and gives it the source's columns as
// of the snapshot (creating it when the twin has none), over tc in its
// open transaction. m is what the twin records of the table (nil: none),
// oldSchema.oldName its name when the copy was asked for.
func reshape(ctx context.Context, tc *pgconn.PgConn, src *pgx.Conn, relid uint32, m *relMap, oldSchema, oldName, schema, name string, attrs []srcAttr) error {
	col := func(n string) string { return pgx.Identifier{n}.Sanitize() }
	qname := pgx.Identifier{schema, name}.Sanitize()
	tq := pgx.Identifier{oldSchema, oldName}.Sanitize()
	if m != nil {
		tq = m.qname()
	}
	cols, exists, err := twinColumnsOn(ctx, tc, tq)
	if err != nil {
		return err
	}
	var stmts []string
	if !exists {
		var defs []string
		for _, a := range live(attrs) {
			defs = append(defs, col(a.name)+" "+a.format)
		}
		// A new partition joins its parent as in the source (the parent's
		// key and indexes come with it); any other table gets its key.
		var parent, bound *string
		err := src.QueryRow(ctx, `SELECT pg_catalog.format('%I.%I', pn.nspname, pc.relname), pg_catalog.pg_get_expr(c.relpartbound, c.oid)
			FROM pg_catalog.pg_class c JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid
			JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
			WHERE c.oid = $1 AND c.relispartition`, relid).Scan(&parent, &bound)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("re-copy %s: partition: %w", qname, redact(err))
		}
		stmts = append(stmts, "CREATE SCHEMA IF NOT EXISTS "+col(schema))
		if parent != nil && bound != nil {
			stmts = append(stmts, "CREATE TABLE "+qname+" PARTITION OF "+*parent+" "+*bound)
		} else {
			stmts = append(stmts, "CREATE TABLE "+qname+" ("+strings.Join(defs, ", ")+")")
			var pk *string
			err := src.QueryRow(ctx, `SELECT pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND contype = 'p'`, relid).Scan(&pk)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("re-copy %s: primary key: %w", qname, redact(err))
			}
			if pk != nil {
				stmts = append(stmts, "ALTER TABLE "+qname+" ADD "+*pk)
			}
		}
		stmts = append(stmts, fmt.Sprintf(`DO $$BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s) THEN ALTER TABLE %s OWNER TO %s; END IF; END$$`,
			quoteLiteral(defaultOwner), qname, col(defaultOwner)))
	} else {
		stmts = append(stmts, "DELETE FROM ONLY "+tq)
		byNum, byName := map[int]srcAttr{}, map[string]srcAttr{}
		for _, a := range attrs {
			byNum[a.num] = a
			if !a.dropped && !a.generated {
				byName[a.name] = a
			}
		}
		num := map[string]int{} // twin column → source attnum
		if m != nil {
			for _, c := range m.Cols {
				num[c.Name] = c.Num
			}
		}
		seen := map[int]bool{}
		for _, c := range cols {
			if c.generated {
				continue
			}
			n, ok := num[c.name]
			if !ok && m == nil {
				n = byName[c.name].num
			}
			a, ok := byNum[n]
			if n == 0 || !ok || a.dropped || a.generated || seen[n] {
				stmts = append(stmts, "ALTER TABLE "+tq+" DROP COLUMN "+col(c.name)+" CASCADE")
				continue
			}
			seen[n] = true
			if a.name != c.name {
				stmts = append(stmts, "ALTER TABLE "+tq+" RENAME COLUMN "+col(c.name)+" TO "+col(a.name))
			}
			if a.format != c.format {
				stmts = append(stmts, "ALTER TABLE "+tq+" ALTER COLUMN "+col(a.name)+" DROP DEFAULT",
					"ALTER TABLE "+tq+" ALTER COLUMN "+col(a.name)+" TYPE "+a.format+" USING NULL")
			}
		}
		for _, a := range live(attrs) {
			if !seen[a.num] {
				stmts = append(stmts, "ALTER TABLE "+tq+" ADD COLUMN "+col(a.name)+" "+a.format)
			}
		}
		if m != nil {
			oldSchema, oldName = m.Schema, m.Name
		}
		if oldName != name {
			stmts = append(stmts, "ALTER TABLE "+tq+" RENAME TO "+col(name))
			tq = pgx.Identifier{oldSchema, name}.Sanitize()
		}
		if oldSchema != schema {
			stmts = append(stmts, "ALTER TABLE "+tq+" SET SCHEMA "+col(schema))
		}
	}
	for _, st := range stmts {
		if _, err := tc.Exec(ctx, st).ReadAll(); err != nil {
			return fmt.Errorf("re-copy %s: prepare the twin's table: %w", qname, redact(err))
		}
	}
	return nil
}

// copyTable copies the table's rows from src (in the snapshot) masked into
// the twin over tc, in its open transaction.
func copyTable(ctx context.Context, tc *pgconn.PgConn, src *pgx.Conn, mk masker, schema, name string, cols []srcAttr) (int64, error) {
	names := make([]string, len(cols))
	for i, a := range cols {
		names[i] = a.name
	}
	t := &table{schema: schema, name: name, columns: names, qname: pgx.Identifier{schema, name}.Sanitize()}
	rm, err := mk.Table(schema, name, names)
	if err != nil {
		return 0, &planError{Table: t.qname, Columns: names, Err: err}
	}
	t.masker, t.columns = rm, names
	if err := t.adoptColumnOrder(); err != nil {
		// A plan made before the table (or a column) existed: the next
		// session reads it again and copies the table then.
		return 0, fmt.Errorf("masking plan: %v: %w", err, errRetryLater)
	}
	pr, pw := io.Pipe()
	mw := &maskWriter{w: pw, rm: t.masker, p: &progress{}}
	srcDone := make(chan error, 1)
	go func() {
		_, err := src.PgConn().CopyTo(ctx, mw, t.copyOut())
		if err == nil {
			err = mw.finish()
		}
		if err != nil {
			pw.CloseWithError(errAbortCopy)
		} else {
			pw.Close()
		}
		srcDone <- err
	}()
	in := "COPY " + t.qname + " FROM STDIN"
	if len(t.columns) > 0 {
		in = "COPY " + t.qname + " (" + t.columnList() + ") FROM STDIN"
	}
	_, terr := tc.CopyFrom(ctx, pr, in)
	pr.CloseWithError(errAbortCopy)
	serr := <-srcDone
	switch {
	case serr != nil && !errors.Is(serr, errAbortCopy):
		return 0, redact(serr)
	case terr != nil:
		return 0, fmt.Errorf("target: %w", redact(terr))
	case serr != nil:
		return 0, redact(serr)
	}
	return mw.rows, nil
}

// applyChange applies one masked change of a transaction that commits at
// final, if the twin lacks it (wanted): the twin's table is brought to the
// change's description first, which may mark the table for a copy.
func (s *session) applyChange(ctx context.Context, c *change, final pgoutput.LSN) error {
	if c.kind == 'T' {
		var keep []string
		for _, q := range c.truncRels {
			if s.wantedName(q, final) {
				keep = append(keep, q)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		if len(keep) < len(c.truncRels) {
			cc := *c
			cc.truncRels = keep
			c = &cc
		}
		return s.ap.apply(ctx, c)
	}
	id := c.rs.rel.RelationID
	if !s.wanted(id, final) {
		return nil
	}
	if err := s.reconcile(ctx, c.rs); err != nil {
		return err
	}
	if !s.wanted(id, final) {
		return nil
	}
	return s.ap.apply(ctx, c)
}

// wantedName is wanted for a table named q (as a truncate names it).
func (s *session) wantedName(q string, final pgoutput.LSN) bool {
	for _, d := range s.ddl.det {
		if src := (pgx.Identifier{d.schema, d.name}).Sanitize(); q == d.qname || q == src {
			return s.wanted(d.relid, final)
		}
		if rs := s.rels[d.relid]; rs != nil && rs.qname == q {
			return s.wanted(d.relid, final)
		}
	}
	return final >= s.lastEnd
}

// setTableWarning shows msg for table qname in sync status; "" clears it.
func (f *follower) setTableWarning(qname, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if msg == "" {
		delete(f.tableWarnings, qname)
		return
	}
	if f.tableWarnings == nil {
		f.tableWarnings = map[string]string{}
	}
	f.tableWarnings[qname] = msg
}

func sortedValues(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}
