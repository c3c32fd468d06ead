package twinsync

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// followNewTables runs between source transactions, every StatusInterval:
// a selected table the twin has never had (created on the source since
// the initial copy) is added to pgtwin's publication, so the stream sends
// its changes from then on, and copied in as a re-copy is (rows committed
// before the copy's snapshot from the copy, later ones from the stream).
// With a configured publication (sync.publication) only tables it
// publishes are copied; the others are the publication's warnings.
func (s *session) followNewTables(ctx context.Context) error {
	if time.Since(s.ddl.tablesAt) < s.f.StatusInterval {
		return nil
	}
	s.ddl.tablesAt = time.Now()
	if err := s.checkChanged(ctx); err != nil {
		return err
	}
	tables, err := sourceTables(ctx, s.src, s.f.Selection)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, m := range s.ddl.maps {
		known[m.qname()] = true
	}
	for _, d := range s.ddl.det {
		known[d.qname] = true
		known[pgx.Identifier{d.schema, d.name}.Sanitize()] = true
	}
	var fresh []sourceTable
	for _, t := range tables {
		q := t.qname()
		if _, blocked := s.blocked[q]; known[q] || blocked || !s.f.syncing(t.schema, t.name) {
			continue
		}
		if _, ok, err := s.twinColumns(ctx, q); err != nil || ok {
			if err != nil {
				return err
			}
			continue // in the twin; reconcile records it at its first change
		}
		fresh = append(fresh, t)
	}
	if len(fresh) == 0 {
		return nil
	}
	// Judge them first: one with PII the rules do not cover is not
	// followed (and not published); its warning says so, and the twin goes on.
	m, err := s.plan(ctx)
	if err != nil {
		return fmt.Errorf("masking plan for new tables: %w", err)
	}
	s.masker = m
	var keep []sourceTable
	for _, t := range fresh {
		if _, ok := s.blocked[t.qname()]; ok {
			s.log.Warn().Str(logkey.Table, t.qname()).Msg("new table on the source has unclassified PII: not followed")
			continue
		}
		keep = append(keep, t)
	}
	fresh = keep
	if len(fresh) == 0 {
		return nil
	}
	if !s.f.UsePublication {
		if err := s.f.ensurePublication(ctx, s.src); err != nil {
			return err
		}
	}
	for _, t := range fresh {
		var relid uint32
		var published bool
		err := s.src.QueryRow(ctx, `SELECT c.oid, EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables p WHERE p.pubname = $2 AND p.schemaname = $3 AND p.tablename = $4)
			FROM pg_catalog.pg_class c WHERE c.oid = to_regclass($1)`, t.qname(), s.f.Publication, t.schema, t.name).Scan(&relid, &published)
		if err != nil {
			return fmt.Errorf("new table %s: %w", t.qname(), redact(err))
		}
		if s.ddl.maps[relid] != nil || s.ddl.det[relid] != nil {
			continue // renamed: reconcile renames the twin's at its next change
		}
		if !published {
			s.f.setTableWarning(t.qname(), outsideWarning(t, s.f.Publication))
			continue
		}
		s.f.setTableWarning(t.qname(), "")
		if err := s.markCopy(ctx, relid, t.schema, t.name, "created on the source"); err != nil {
			return err
		}
	}
	return s.commitGroup(ctx)
}

// checkChanged compares the twin's tables with the source's catalog. A
// schema change reaches the stream only with the table's next row change:
// until then a table whose change the stream could apply shows a warning,
// and one whose existing rows only the source knows (a volatile default,
// a rewrite) is copied again now rather than wait.
func (s *session) checkChanged(ctx context.Context) error {
	ids := make([]uint32, 0, len(s.ddl.maps))
	for id := range s.ddl.maps {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	gen := "a.attgenerated <> ''"
	if s.ddl.version < 120000 {
		gen = "false"
	}
	rows, err := s.src.Query(ctx, `SELECT c.oid, n.nspname, c.relname, coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}'),
			coalesce(array_agg(a.atttypid::int8 ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}'),
			coalesce(array_agg(a.atttypmod ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}')
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND NOT `+gen+`
		WHERE c.oid = ANY($1) GROUP BY c.oid, n.nspname, c.relname`, ids)
	if err != nil {
		return fmt.Errorf("check source tables: %w", redact(err))
	}
	var changed []*pgoutput.Relation
	for rows.Next() {
		r := &pgoutput.Relation{}
		var names []string
		var types []int64
		var mods []int32
		if err := rows.Scan(&r.RelationID, &r.Namespace, &r.RelationName, &names, &types, &mods); err != nil {
			rows.Close()
			return fmt.Errorf("check source tables: %w", redact(err))
		}
		for i, n := range names {
			r.Columns = append(r.Columns, pgoutput.RelationColumn{Name: n, DataType: uint32(types[i]), TypeModifier: mods[i]})
		}
		m := s.ddl.maps[r.RelationID]
		if d := s.ddl.det[r.RelationID]; m == nil || m.matches(r) || !s.f.syncing(r.Namespace, r.RelationName) || d != nil && d.state == tableCopy {
			delete(s.ddl.noticed, r.RelationID)
			continue
		}
		// Judged once per state of the catalog: judging may read the
		// masking plan again, which samples the source.
		sig := fmt.Sprint(r.Namespace, r.RelationName, names, types, mods)
		if s.ddl.noticed[r.RelationID] != sig {
			s.ddl.noticed[r.RelationID] = sig
			changed = append(changed, r)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check source tables: %w", redact(err))
	}
	for _, r := range changed {
		m := s.ddl.maps[r.RelationID]
		rs, err := s.relState(ctx, r)
		if err != nil {
			s.f.setTableWarning(m.qname(), fmt.Sprintf("table %s changed on the source and its masking stops apply at its next change: %v", m.qname(), err))
			continue
		}
		_, _, attrs, ok, err := readAttrs(ctx, s.src, r.RelationID, s.ddl.version)
		if err != nil || !ok {
			return err
		}
		stmts, _, reason, err := s.diff(rs, m, attrs)
		if err != nil {
			return err
		}
		switch {
		case reason == reasonMoved:
		case reason != "":
			if err := s.markCopy(ctx, r.RelationID, r.Namespace, r.RelationName, reason); err != nil {
				return err
			}
			if err := s.commitGroup(ctx); err != nil {
				return err
			}
		default:
			var what []string
			for _, st := range stmts {
				what = append(what, st.what)
			}
			s.f.setTableWarning(m.qname(), fmt.Sprintf("table %s changed on the source (%s); the twin applies it with the table's next change",
				m.qname(), strings.Join(what, ", ")))
		}
	}
	return nil
}
