package twinsync

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// subsetNotes are the lines `mask plan` shows for a subset: per copied
// table, the rows the closure holds now against the source's estimate of
// the whole, and why they are in (root filter, referenced, referencing),
// or that the table is copied whole. It computes the closure on conn, a
// plain session, in a transaction it rolls back.
func subsetNotes(ctx context.Context, conn *pgx.Conn, sel selection, spec subsetSpec) ([]string, error) {
	if !spec.enabled() {
		return nil, nil
	}
	v, err := serverMajor(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("subset: %w", err)
	}
	if err := beginSubset(ctx, conn); err != nil {
		return nil, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	// The table list a run copies, without maskers.
	r := &run{d: &dumper{Selection: sel}, coord: &coordinator{conn: conn}, srcVersion: v}
	tables, err := r.listTables(ctx, maskerFunc(func(string, string, []string) (rowMasker, error) { return nil, nil }))
	if err != nil {
		return nil, err
	}
	s, err := computeSubset(ctx, conn, spec, tables)
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, t := range tables {
		name := t.schema + "." + t.name
		st := s.byName[relKey(t.schema, t.name)]
		if st == nil {
			notes = append(notes, fmt.Sprintf("subset: %s: copied whole (related to no sync.subset root)", name))
			continue
		}
		var why []string
		if st.filter != "" {
			why = append(why, "root: "+st.filter)
		}
		if st.referenced {
			why = append(why, "referenced by copied rows")
		}
		if st.referencing {
			why = append(why, "referencing copied rows")
		}
		if len(why) == 0 {
			why = append(why, "related to a root only through foreign keys not followed")
		}
		whole := "unknown"
		if t.estRows >= 0 {
			whole = fmt.Sprintf("about %d", t.estRows)
		}
		notes = append(notes, fmt.Sprintf("subset: %s: %d rows of %s (%s)", name, st.rows, whole, strings.Join(why, "; ")))
	}
	return notes, nil
}
