package twinsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// recopy copies one table again, masked, from a fresh snapshot of the
// source, the way a native table sync worker does: a temporary slot
// exports a snapshot at its consistent point P; the rows are copied in
// that snapshot into the twin inside the apply's open transaction (so the
// copy, the record of P and the progress commit together); from then on
// the stream's changes of the table in transactions that committed before
// P are dropped (the copy has them) and later ones applied. The stream
// waits while the table copies; other tables' changes of the same
// transactions are applied as usual.
func (s *session) recopy(ctx context.Context, rs *relState, reason string) error {
	relid := rs.rel.RelationID
	start := time.Now()
	s.log.Warn().Str(logkey.Table, rs.qname).Str(logkey.Reason, reason).Msg("the stream cannot bring this table up to date: copying it again")
	s.f.setTableWarning(rs.qname, fmt.Sprintf("table %s is being copied again from the source: %s", rs.qname, reason))
	if err := s.ap.begin(ctx); err != nil {
		return err
	}
	if err := s.ap.flush(ctx); err != nil {
		return err
	}
	// The stream waits meanwhile: keep telling the source we are alive
	// (with what is already durable), or wal_sender_timeout ends it.
	alive := s.keepAlive(ctx)
	defer alive()
	cfg, err := s.f.Source.connConfig()
	if err != nil {
		return err
	}
	repl, err := pgoutput.ConnectConfig(ctx, &cfg.Config)
	if err != nil {
		return fmt.Errorf("re-copy %s: source replication connection: %w", rs.qname, redact(err))
	}
	defer repl.Close(context.WithoutCancel(ctx))
	s.ddl.copies++
	// Slot names: at most 63 of [a-z0-9_].
	suffix := fmt.Sprintf("_copy_%d_%d", os.Getpid(), s.ddl.copies)
	slot := strings.ToLower(s.f.Slot)
	slot = slot[:min(len(slot), 63-len(suffix))] + suffix
	res, err := repl.CreateReplicationSlot(ctx, slot, "pgoutput", pgoutput.SlotOptions{Temporary: true, Snapshot: pgoutput.SnapshotExport})
	if err != nil {
		return fmt.Errorf("re-copy %s: %w (the source needs a free slot for it: raise max_replication_slots; or pgtwin sync now --resync)", rs.qname, redact(err))
	}
	// ConnectConfig made cfg a replication connection's: start over.
	if cfg, err = s.f.Source.connConfig(); err != nil {
		return err
	}
	src, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("re-copy %s: connect to source: %w", rs.qname, redact(err))
	}
	defer src.Close(context.WithoutCancel(ctx))
	if _, err := src.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("re-copy %s: %w", rs.qname, redact(err))
	}
	if _, err := src.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(res.SnapshotName)); err != nil {
		return fmt.Errorf("re-copy %s: import snapshot: %w", rs.qname, redact(err))
	}
	schema, name, attrs, ok, err := readAttrs(ctx, src, relid, s.ddl.version)
	if err != nil {
		return err
	}
	s.ddl.skip[relid] = res.ConsistentPoint
	s.ddl.checked[rs.ver] = true
	if !ok {
		// Dropped on the source since: the twin keeps what it had, and
		// the stream sends nothing more of it.
		s.log.Warn().Str(logkey.Table, rs.qname).Msg("table dropped on the source before it could be copied again")
		s.f.setTableWarning(rs.qname, fmt.Sprintf("table %s was dropped on the source; the twin keeps its last rows", rs.qname))
		return nil
	}
	qname := pgx.Identifier{schema, name}.Sanitize()
	if err := s.reshape(ctx, relid, rs, src, schema, name, attrs); err != nil {
		return err
	}
	rows, err := s.copyTable(ctx, src, schema, name, live(attrs))
	if err != nil {
		return fmt.Errorf("re-copy %s: %w", qname, err)
	}
	if _, err := src.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("re-copy %s: %w", qname, redact(err))
	}
	if s.f.fault != nil {
		s.f.fault("recopy")
	}
	m := mapOf(schema, name, attrs)
	m.copied = res.ConsistentPoint
	if err := s.saveRelation(ctx, relid, m); err != nil {
		return err
	}
	delete(s.ap.tables, rs.qname)
	delete(s.ap.tables, qname)
	s.f.setTableWarning(rs.qname, "")
	s.log.Info().Str(logkey.Table, qname).Int64(logkey.Rows, rows).Str(logkey.LSN, res.ConsistentPoint.String()).
		Dur(logkey.Duration, time.Since(start)).Msg("table copied again")
	return nil
}

// keepAlive sends standby status every statusEvery until the returned
// stop is called; nothing else uses the replication connection meanwhile.
func (s *session) keepAlive(ctx context.Context) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(statusEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.sendStatus(ctx); err != nil {
					s.log.Warn().Err(err).Msg("standby status during a table copy")
				}
			}
		}
	}()
	return func() { close(done); <-ended }
}

// reshape empties the twin's table and gives it the source's columns as
// of the snapshot (creating it when the twin has none).
func (s *session) reshape(ctx context.Context, relid uint32, rs *relState, src *pgx.Conn, schema, name string, attrs []srcAttr) error {
	col := func(n string) string { return pgx.Identifier{n}.Sanitize() }
	qname := pgx.Identifier{schema, name}.Sanitize()
	tq := rs.qname
	m := s.ddl.maps[relid]
	if m != nil {
		tq = m.qname()
	}
	cols, exists, err := s.twinColumns(ctx, tq)
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
		oldSchema, oldName := rs.rel.Namespace, rs.rel.RelationName
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
	if err := s.ap.flush(ctx); err != nil {
		return err
	}
	for _, st := range stmts {
		if err := s.ap.exec(ctx, st); err != nil {
			return fmt.Errorf("re-copy %s: prepare the twin's table: %w", qname, err)
		}
	}
	return nil
}

// copyTable copies the table's rows from src (in the snapshot) masked into
// the twin over the apply's connection and transaction.
func (s *session) copyTable(ctx context.Context, src *pgx.Conn, schema, name string, cols []srcAttr) (int64, error) {
	names := make([]string, len(cols))
	for i, a := range cols {
		names[i] = a.name
	}
	t := &table{schema: schema, name: name, columns: names, qname: pgx.Identifier{schema, name}.Sanitize()}
	for attempt := 0; ; attempt++ {
		rm, err := s.masker.Table(schema, name, names)
		if err == nil {
			t.masker, t.columns = rm, names
			if err = t.adoptColumnOrder(); err == nil {
				break
			}
		}
		if attempt > 0 {
			return 0, fmt.Errorf("masking plan: %w", err)
		}
		// A plan made before the table (or a column) existed: read it again.
		m, perr := s.plan(ctx)
		if perr != nil {
			return 0, &planError{Table: t.qname, Columns: names, Err: perr}
		}
		s.masker = m
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
	_, terr := s.ap.conn.CopyFrom(ctx, pr, in)
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
// final: the twin's table is brought to the change's description first,
// and a change the table's last re-copy already holds is dropped.
func (s *session) applyChange(ctx context.Context, c *change, final pgoutput.LSN) error {
	if c.kind == 'T' {
		var keep []string
		for _, q := range c.truncRels {
			if !s.copiedAfter(q, final) {
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
	// A change the last re-copy holds needs no reconcile either: a
	// streamed transaction's later versions of the table would each copy
	// it again.
	id := c.rs.rel.RelationID
	if p, ok := s.ddl.skip[id]; ok && final < p {
		return nil
	}
	if err := s.reconcile(ctx, c.rs); err != nil {
		return err
	}
	if p, ok := s.ddl.skip[id]; ok && final < p {
		return nil
	}
	return s.ap.apply(ctx, c)
}

// copiedAfter reports whether the twin table qname was re-copied from a
// snapshot that holds transactions committing at final.
func (s *session) copiedAfter(qname string, final pgoutput.LSN) bool {
	for id, p := range s.ddl.skip {
		if final >= p {
			continue
		}
		if m := s.ddl.maps[id]; m != nil && m.qname() == qname {
			return true
		}
	}
	return false
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
