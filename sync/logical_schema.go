package twinsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/logkey"

	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// relation takes a Relation message: its masking is worked out (the plan
// judges columns it has not seen); how the twin's table is brought to it
// is reconcile's, before the first change that uses it is applied.
func (s *session) relation(ctx context.Context, r *pgoutput.Relation) error {
	if !s.f.syncing(r.Namespace, r.RelationName) {
		s.nextVer++
		rs := &relState{ver: s.nextVer, rel: r, qname: qualified(r), outside: true}
		s.rels[r.RelationID] = rs
		s.versions[rs.ver] = rs
		return nil
	}
	s.relset.Add(r)
	d := s.ddl.det[r.RelationID]
	if in, _ := s.dec.InStream(); !in && s.inTxn && (d == nil && s.ddl.final < s.lastEnd || d != nil && d.state == tableCopy) {
		// Read again for a table copied again, or of a table whose copy
		// is to come: its changes here are in the twin or dropped, and
		// this description may be older than the masking plan.
		s.nextVer++
		rs := &relState{ver: s.nextVer, rel: r, qname: qualified(r)}
		s.rels[r.RelationID], s.versions[rs.ver], s.lazy[rs.ver] = rs, rs, true
		return nil
	}
	rs, err := s.relState(ctx, r)
	if err != nil {
		return err
	}
	s.rels[r.RelationID] = rs
	s.versions[rs.ver] = rs
	return nil
}

// relState builds the masking for a relation's columns. A column the plan
// does not know (added since the plan was made) makes the plan be read
// again from the source; if that finds PII without a rule, apply stops
// here, before any value of the column is masked, buffered or written.
func (s *session) relState(ctx context.Context, r *pgoutput.Relation) (*relState, error) {
	s.nextVer++
	rs := &relState{ver: s.nextVer, rel: r, qname: qualified(r), maskAt: make([]int, len(r.Columns))}
	names := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		names[i] = c.Name
	}
	for attempt := 0; ; attempt++ {
		if brs, ok, err := s.blockedRel(rs, names); ok {
			return brs, err
		}
		rm, err := s.masker.Table(r.Namespace, r.RelationName, names)
		if err != nil && attempt < 8 {
			// A table created since the plan was made: read it again. The
			// walsender may send the creating transaction a moment before
			// its commit is visible to other sessions, so a plan read at
			// once can still miss it: wait a little more each time.
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
				}
			}
			m, err := s.plan(ctx)
			if err != nil {
				return nil, &planError{Table: rs.qname, Columns: names, Err: err}
			}
			s.masker = m
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("masking plan for %s: %w", rs.qname, err)
		}
		if rm == nil {
			for i := range rs.maskAt {
				rs.maskAt[i] = -1
			}
			return rs, nil
		}
		vm, ok := rm.(valueMasker)
		if !ok {
			return nil, fmt.Errorf("masking plan for %s: its masker cannot mask single values", rs.qname)
		}
		at := map[string]int{}
		for i, n := range vm.Columns() {
			at[n] = i
		}
		var unknown []string
		for i, n := range names {
			j, ok := at[n]
			if !ok {
				unknown = append(unknown, n)
				continue
			}
			rs.maskAt[i] = -1
			if m, ok := vm.(interface{ Masked(int) bool }); !ok || m.Masked(j) {
				rs.maskAt[i] = j
			}
		}
		rs.masker = vm
		if len(unknown) == 0 {
			return rs, nil
		}
		if attempt > 0 && attempt < 8 {
			// The walsender may send a transaction before its commit is
			// visible to other sessions: give the catalog a moment.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		} else if attempt > 0 && func() bool { in, _ := s.dec.InStream(); return in }() {
			// A streamed transaction still open on the source added them:
			// the catalog shows them once it commits. Start over then.
			return nil, fmt.Errorf("column(s) %s of %s were added by a transaction still in progress on the source: %w",
				strings.Join(unknown, ", "), rs.qname, errRetryLater)
		}
		if attempt >= 8 {
			return nil, fmt.Errorf("masking plan for %s (columns %s) does not cover column(s) %s: %w", rs.qname, strings.Join(vm.Columns(), ", "), strings.Join(unknown, ", "), errNeedsResync)
		}
		if attempt == 0 {
			s.log.Info().Str(logkey.Table, rs.qname).Strs(logkey.Columns, unknown).Msg("new columns on the source: checking the masking plan")
		}
		m, err := s.plan(ctx)
		if err != nil {
			return nil, &planError{Table: rs.qname, Columns: unknown, Err: err}
		}
		s.masker = m
	}
}

// plan reads the masking plan again. A catalog read can race the commit
// the stream just delivered (the walsender may send it a moment before it
// is visible), and fail sampling a column renamed meanwhile: try again.
func (s *session) plan(ctx context.Context) (masker, error) {
	for attempt := 1; ; attempt++ {
		m, err := s.f.Plan(ctx, s.src)
		if err == nil || attempt == 3 || ctx.Err() != nil || errors.Is(err, anonymize.ErrUnclassified) {
			return s.takePlan(m, err)
		}
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
}

// planError stops apply when columns added on the source fail the masking
// plan (typically unclassified PII). Nothing of them was written; add rules
// and restart the sync to go on from where it stopped.
type planError struct {
	Table   string
	Columns []string
	Err     error
}

func (e *planError) Error() string {
	return fmt.Sprintf("apply stopped: column(s) %s added to %s on the source: %v; add the rules, then restart the sync (it goes on from where it stopped)",
		strings.Join(e.Columns, ", "), e.Table, e.Err)
}

func (e *planError) Unwrap() error { return e.Err }

// syncSequences copies every sequence's value from the source into the
// twin, so rows made in a branch never collide with replicated ones.
func (s *session) syncSequences(ctx context.Context) error {
	s.seqAt = time.Now()
	if err := s.ap.flush(ctx); err != nil {
		return err
	}
	rows, err := s.src.Query(ctx, `SELECT pg_catalog.format('%I.%I', schemaname, sequencename), last_value
		FROM pg_catalog.pg_sequences WHERE last_value IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("read source sequences: %w", redact(err))
	}
	type seq struct {
		name string
		v    int64
	}
	seqs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (seq, error) {
		var q seq
		return q, row.Scan(&q.name, &q.v)
	})
	if err != nil {
		return fmt.Errorf("read source sequences: %w", redact(err))
	}
	if len(seqs) == 0 {
		return nil
	}
	var names, vals []string
	for _, q := range seqs {
		names = append(names, quoteLiteral(q.name))
		vals = append(vals, fmt.Sprint(q.v))
	}
	sql := "SELECT pg_catalog.setval(n::regclass, v, true) FROM unnest(ARRAY[" + strings.Join(names, ",") +
		"]::text[], ARRAY[" + strings.Join(vals, ",") + "]::int8[]) AS x(n, v) WHERE to_regclass(n) IS NOT NULL"
	if err := s.ap.exec(ctx, sql); err != nil {
		return fmt.Errorf("set twin sequences: %w", err)
	}
	return nil
}
