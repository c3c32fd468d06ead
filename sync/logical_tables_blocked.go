package twinsync

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/colkey"
)

// unclassifiedPlan is what the Plan hook returns for a plan with
// unclassified PII: the error a dump (and an initial copy) stops with, and,
// for a follower that already streams, the masker of the rest and the
// tables it blocks. The masker refuses the blocked tables' rows anyway.
type unclassifiedPlan struct {
	err     error
	masker  masker
	blocked map[string]blockedTable // by quoted name
}

// blockedTable is a table with unclassified PII columns.
type blockedTable struct {
	cols []string // column names
	keys []string // their rule keys
}

func (e *unclassifiedPlan) Error() string { return e.err.Error() }
func (e *unclassifiedPlan) Unwrap() error { return e.err }

// newUnclassifiedPlan wraps uerr, plan.UnclassifiedError().
func newUnclassifiedPlan(plan *anonymize.Plan, key []byte, uerr error) error {
	u := &unclassifiedPlan{err: uerr, masker: planMasker(plan, key), blocked: map[string]blockedTable{}}
	for _, t := range plan.Tables {
		var b blockedTable
		for _, c := range t.Columns {
			if c.Action == anonymize.ActionUnclassified {
				b.cols = append(b.cols, c.Column)
				b.keys = append(b.keys, colkey.Format(t.Schema, t.Name, c.Column))
			}
		}
		if len(b.cols) > 0 {
			u.blocked[pgx.Identifier{t.Schema, t.Name}.Sanitize()] = b
		}
	}
	return u
}

// blockedKey keeps a blocked table's warning apart from the table's other
// state among the follower's table warnings, so `mask plan` can list them.
const blockedKey = "blocked\x00"

// takePlan adopts what the Plan hook returned. A plan that fails only on
// unclassified PII is taken for the tables it covers: the others are
// blocked, each with its warning, and the twin goes on without them.
func (s *session) takePlan(m masker, err error) (masker, error) {
	var u *unclassifiedPlan
	if err != nil && !errors.As(err, &u) {
		return nil, err
	}
	blocked := map[string]blockedTable{}
	s.blockedErr = nil
	if u != nil {
		m, blocked, s.blockedErr = u.masker, u.blocked, u.err
	}
	for q := range s.blocked {
		if _, ok := blocked[q]; !ok {
			s.f.setTableWarning(blockedKey+q, "")
		}
	}
	for q, b := range blocked {
		s.f.setTableWarning(blockedKey+q, blockedWarning(q, b.keys, s.inTwin(q)))
	}
	s.blocked = blocked
	return m, nil
}

// blockedRel returns the state of a relation the plan blocks (ok false:
// it does not, or no more, for its columns are not what the plan blocked).
// A table the twin does not have yet is left out, its changes dropped
// unmasked, never buffered; one the twin has stops apply before any value
// of the new columns is written, as the rows it has would go stale.
func (s *session) blockedRel(rs *relState, names []string) (*relState, bool, error) {
	b, ok := s.blocked[rs.qname]
	if !ok {
		return nil, false, nil
	}
	for _, c := range b.cols {
		if !slices.Contains(names, c) {
			return nil, false, nil
		}
	}
	if s.ddl != nil && s.ddl.maps[rs.rel.RelationID] != nil {
		return nil, true, &planError{Table: rs.qname, Columns: b.keys, Err: s.blockedErr}
	}
	rs.outside, rs.maskAt = true, nil
	return rs, true, nil
}

// inTwin reports whether the twin follows table q already.
func (s *session) inTwin(q string) bool {
	if s.ddl == nil {
		return false
	}
	for _, m := range s.ddl.maps {
		if m.qname() == q {
			return true
		}
	}
	return false
}

func blockedWarning(q string, cols []string, inTwin bool) string {
	if inTwin {
		return fmt.Sprintf("table %s has column(s) %s that look like PII and have no rule: apply stops at the table's next change; add rules under [anonymize.columns] and restart pgtwin",
			q, strings.Join(cols, ", "))
	}
	return fmt.Sprintf("table %s is blocked: column(s) %s look like PII and have no rule, so logical sync copies none of its rows (the rest of the twin streams on); add rules under [anonymize.columns] and restart pgtwin to copy it in",
		q, strings.Join(cols, ", "))
}

// blockedWarnings are the warnings of the tables the masking plan blocks,
// for `mask plan`.
func (f *follower) blockedWarnings() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for k := range f.tableWarnings {
		if strings.HasPrefix(k, blockedKey) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = f.tableWarnings[k]
	}
	return out
}
