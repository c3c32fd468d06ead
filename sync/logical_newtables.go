package twinsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgtwin/pgtwin/anonymize"
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
	tables, err := sourceTables(ctx, s.src, s.f.Selection)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, m := range s.ddl.maps {
		known[m.qname()] = true
	}
	var fresh []sourceTable
	for _, t := range tables {
		q := t.qname()
		if known[q] || s.ddl.blocked[q] || !s.f.syncing(t.schema, t.name) {
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
	// followed (and not published), with a warning, and the twin goes on.
	m, err := s.plan(ctx)
	if err != nil {
		if !errors.Is(err, anonymize.ErrUnclassified) {
			return fmt.Errorf("masking plan for new tables: %w", err)
		}
		var keep []sourceTable
		for _, t := range fresh {
			if strings.Contains(err.Error(), t.schema+"."+t.name+".") {
				s.ddl.blocked[t.qname()] = true
				s.f.setTableWarning(t.qname(), fmt.Sprintf("table %s was created on the source and is not followed: %v", t.qname(), err))
				s.log.Warn().Str(logkey.Table, t.qname()).Msg("new table on the source has unclassified PII: not followed")
				continue
			}
			keep = append(keep, t)
		}
		if len(keep) == len(fresh) {
			return &planError{Table: fresh[0].qname(), Err: err}
		}
		fresh = keep
	} else {
		s.masker = m
	}
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
		if !published {
			s.f.setTableWarning(t.qname(), outsideWarning(t, s.f.Publication))
			continue
		}
		s.f.setTableWarning(t.qname(), "")
		s.nextVer++
		rs := &relState{ver: s.nextVer, rel: &pgoutput.Relation{RelationID: relid, Namespace: t.schema, RelationName: t.name}, qname: t.qname()}
		if err := s.openGroup(ctx); err != nil {
			return err
		}
		if err := s.recopy(ctx, rs, "created on the source"); err != nil {
			return err
		}
	}
	return s.commitGroup(ctx)
}
