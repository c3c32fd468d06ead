package twinsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// relation takes a Relation message: a new description is diffed against
// the cached one; columns appended at the end are applied (after the plan
// has judged them), anything else stops apply until a resync.
func (s *session) relation(ctx context.Context, r *pgoutput.Relation) error {
	if !s.f.syncing(r.Namespace, r.RelationName) {
		s.nextVer++
		rs := &relState{ver: s.nextVer, rel: r, qname: qualified(r), outside: true}
		s.rels[r.RelationID] = rs
		s.versions[rs.ver] = rs
		return nil
	}
	d := s.relset.Add(r)
	if !d.New && !d.Empty() && !d.OnlyAdded() {
		return fmt.Errorf("table %s changed on the source (%s); logical sync applies only added columns, so the twin must be rebuilt: %w",
			qualified(r), describeDiff(d), errNeedsResync)
	}
	rs, err := s.relState(ctx, r)
	if err != nil {
		return err
	}
	s.rels[r.RelationID] = rs
	s.versions[rs.ver] = rs
	return nil
}

func describeDiff(d pgoutput.RelationDiff) string {
	var parts []string
	if d.Renamed {
		parts = append(parts, "renamed")
	}
	if d.ReplicaIdentityChanged {
		parts = append(parts, "replica identity changed")
	}
	for _, c := range d.Removed {
		parts = append(parts, "column "+c.Name+" dropped")
	}
	for _, c := range d.Changed {
		parts = append(parts, "column "+c.New.Name+" changed type or key")
	}
	if d.Reordered {
		parts = append(parts, "columns reordered")
	}
	return strings.Join(parts, ", ")
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
		rm, err := s.masker.Table(r.Namespace, r.RelationName, names)
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
			s.log.Info().Str("table", rs.qname).Strs("columns", unknown).Msg("new columns on the source: checking the masking plan")
		}
		m, err := s.f.Plan(ctx, s.src)
		if err != nil {
			return nil, &planError{Table: rs.qname, Columns: unknown, Err: err}
		}
		s.masker = m
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

// columnDef reads an added column's type (and, for a kept column, its
// default) from the source for ALTER TABLE ADD COLUMN in the twin.
func (s *session) columnDef(ctx context.Context, rs *relState, col string) (string, error) {
	var typ string
	var def *string
	err := s.src.QueryRow(ctx, `SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), pg_catalog.pg_get_expr(d.adbin, d.adrelid)
		FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped`, rs.qname, col).Scan(&typ, &def)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("column %s of %s is gone from the source again: %w", col, rs.qname, errNeedsResync)
	}
	if err != nil {
		return "", fmt.Errorf("read new column %s of %s: %w", col, rs.qname, redact(err))
	}
	masked := false
	for i, c := range rs.rel.Columns {
		if c.Name == col && rs.maskAt[i] >= 0 {
			masked = true
		}
	}
	// Rows that existed before the column got the default on the source
	// and no change for it; a masked column's default would need masking.
	if def != nil && !masked && !strings.Contains(*def, "nextval(") {
		typ += " DEFAULT " + *def
	}
	return typ, nil
}

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
