package twinsync

import (
	"context"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// Set-based updates and deletes: a run of updates (or deletes) of one
// table by an unchanged key goes in as one statement joining the table
// with the run's values, unnested from one text[] per column, instead of a
// statement per row; the twin then does what native apply does, an index
// lookup and a tuple change per row, without a statement's executor
// start-up for each. Only what is exactly equivalent goes this way:
//   - an update whose old tuple was not sent (the key is unchanged, byte
//     for byte) and whose key columns all have values; it sets every other
//     column, an unchanged TOAST one to itself (the twin keeps its stored
//     value as it is, as an UPDATE that does not name it would);
//   - a delete by key (REPLICA IDENTITY DEFAULT or USING INDEX).
//
// A key seen twice in one run: a later update is merged over the earlier
// (its values win, its unchanged columns keep the earlier's), which is what
// applying both gives; a second delete ends the run. Any other change of
// the table (an insert, a key-changing update, a REPLICA IDENTITY FULL
// change) ends the run first, so the table's own order is kept.

// setMin is the run from which one set-based statement is used: for
// fewer rows, statements of their own cost the twin no more CPU (measured
// with TestBenchApplyDirect).
const setMin = 8

// setKey returns the run key of an update or delete that can join a
// set-based run, or "" when it goes as a statement of its own.
func setKey(c *change, tt *twinTable) string {
	cols := c.rs.rel.Columns
	var tup pgoutput.Tuple
	switch {
	case c.kind == 'U' && c.oldType == 0:
		tup = c.newT
	case c.kind == 'D' && c.oldType == pgoutput.OldTupleKey:
		tup = c.oldT
	default:
		return ""
	}
	if len(tup) != len(cols) || tt.rowByRow {
		return ""
	}
	keys, sets := 0, 0
	for i, v := range tup {
		name := cols[i].Name
		if cols[i].IsKey() {
			// A key compared as text, or without a value, is not a key
			// an equi-join can use.
			if v.Kind != pgoutput.TupleText || tt.noEq[name] || tt.typ[name] == "" {
				return ""
			}
			keys++
			continue
		}
		if c.kind == 'D' || tt.always[name] {
			continue
		}
		if v.Kind == pgoutput.TupleBinary || tt.typ[name] == "" || tt.uniq[name] || tt.uniqAll {
			return ""
		}
		sets++
	}
	if keys == 0 || c.kind == 'U' && sets == 0 {
		return ""
	}
	return strconv.FormatUint(c.rs.ver, 10) + string(c.kind)
}

// rowKey is the key values of a change that setKey accepted.
func rowKey(c *change) string {
	var b []byte
	for i, v := range rowTuple(c, c.kind) {
		if c.rs.rel.Columns[i].IsKey() {
			b = binary.AppendUvarint(b, uint64(len(v.Data)))
			b = append(b, v.Data...)
		}
	}
	return string(b)
}

// addSet adds an update or delete to its table's set-based run.
func (a *applier) addSet(ctx context.Context, c *change, tt *twinTable, k string) error {
	qname := c.rs.qname
	r, err := a.runFor(ctx, qname, k, c.kind, tt)
	if err != nil {
		return err
	}
	id := rowKey(c)
	if j, ok := r.at[id]; ok {
		if c.kind == 'U' {
			r.rows[j] = mergeUpdate(r.rows[j], c)
			return nil
		}
		if err := a.flushRun(ctx, qname); err != nil {
			return err
		}
		if r, err = a.runFor(ctx, qname, k, c.kind, tt); err != nil {
			return err
		}
	}
	if r.at == nil {
		r.at = map[string]int{}
	}
	r.at[id] = len(r.rows)
	r.rows = append(r.rows, c)
	return a.added(ctx)
}

// mergeUpdate is one update that does what applying first and then
// second does to a row.
func mergeUpdate(first, second *change) *change {
	m := *second
	m.newT = append(pgoutput.Tuple(nil), second.newT...)
	for i, v := range m.newT {
		if v.Kind == pgoutput.TupleUnchanged {
			m.newT[i] = first.newT[i]
		}
	}
	return &m
}

// flushSet queues a run of updates or deletes: one statement for all.
func (a *applier) flushSet(ctx context.Context, r *applyRun) error {
	if len(r.rows) < setMin {
		for _, c := range r.rows {
			if err := a.changeRow(ctx, c, r.tt); err != nil {
				return err
			}
		}
		return nil
	}
	rs := r.rows[0].rs
	cols := rs.rel.Columns
	// Key columns first, then the columns set, each one text[] parameter;
	// a column some row leaves unchanged also gets a bool[] saying which.
	var keys, sets []int
	keep := map[int]bool{}
	for i, col := range cols {
		switch {
		case col.IsKey():
			keys = append(keys, i)
		case r.kind == 'U' && !r.tt.always[col.Name]:
			sets = append(sets, i)
			for _, c := range r.rows {
				if c.newT[i].Kind == pgoutput.TupleUnchanged {
					keep[i] = true
					break
				}
			}
		}
	}
	var args, names, conds, assigns []string
	var params [][]byte
	stmtKey := "set" + r.key
	arg := func(name, typ string, b []byte) {
		params = append(params, b)
		args = append(args, "pg_catalog.unnest($"+strconv.Itoa(len(params))+"::pg_catalog."+typ+"[])")
		names = append(names, name)
	}
	for _, i := range append(append([]int(nil), keys...), sets...) {
		p := "p" + strconv.Itoa(i)
		arg(p, "text", textArray(r.rows, r.kind, i))
		col := pgx.Identifier{cols[i].Name}.Sanitize()
		val := "v." + p + "::" + r.tt.typ[cols[i].Name]
		switch {
		case cols[i].IsKey():
			conds = append(conds, "d."+col+" = "+val)
		case keep[i]:
			arg("k"+strconv.Itoa(i), "bool", keepArray(r.rows, i))
			assigns = append(assigns, col+" = CASE WHEN v.k"+strconv.Itoa(i)+" THEN d."+col+" ELSE "+val+" END")
			stmtKey += "/" + strconv.Itoa(i)
		default:
			assigns = append(assigns, col+" = "+val)
		}
	}
	from := "ROWS FROM (" + strings.Join(args, ", ") + ") AS v(" + strings.Join(names, ", ") + ")"
	var sql string
	if r.kind == 'U' {
		sql = "UPDATE " + rs.qname + " AS d SET " + strings.Join(assigns, ", ") + " FROM " + from + " WHERE " + strings.Join(conds, " AND ")
	} else {
		sql = "DELETE FROM " + rs.qname + " AS d USING " + from + " WHERE " + strings.Join(conds, " AND ")
	}
	name, err := a.prepare(ctx, stmtKey, sql)
	if err != nil {
		return err
	}
	formats := make([]int16, len(params))
	for i := range formats {
		formats[i] = 1
	}
	return a.queue(ctx, name, params, formats, int64(len(r.rows)), rs.qname)
}

// keepArray is a bool[] in binary form: which rows leave column i as is.
func keepArray(rows []*change, i int) []byte {
	b := arrayHeader(make([]byte, 0, 20+5*len(rows)), len(rows), false, 16)
	for _, c := range rows {
		v := byte(0)
		if c.newT[i].Kind == pgoutput.TupleUnchanged {
			v = 1
		}
		b = append(b, 0, 0, 0, 1, v)
	}
	return b
}

func arrayHeader(b []byte, n int, hasNull bool, elem uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, 1) // dimensions
	nulls := uint32(0)
	if hasNull {
		nulls = 1
	}
	b = binary.BigEndian.AppendUint32(b, nulls)
	b = binary.BigEndian.AppendUint32(b, elem)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return binary.BigEndian.AppendUint32(b, 1) // lower bound
}

// textArray is column i of the rows as a text[] in binary form: no
// escaping to get wrong, and the server only copies the bytes. Unchanged
// values go as NULL; keepArray tells them apart.
func textArray(rows []*change, kind byte, i int) []byte {
	n, hasNull := 20, false
	for _, c := range rows {
		v := rowTuple(c, kind)[i]
		n += 4 + len(v.Data)
		hasNull = hasNull || v.Kind != pgoutput.TupleText
	}
	b := arrayHeader(make([]byte, 0, n), len(rows), hasNull, 25)
	for _, c := range rows {
		v := rowTuple(c, kind)[i]
		if v.Kind != pgoutput.TupleText {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(v.Data)))
		b = append(b, v.Data...)
	}
	return b
}

func rowTuple(c *change, kind byte) pgoutput.Tuple {
	if kind == 'D' {
		return c.oldT
	}
	return c.newT
}

// setLimitsSQL lists what keeps a twin table's changes from being applied
// set-based: a unique (or exclusion) index is checked row by row as a
// statement goes, so updates that shift a unique value from row to row in
// the source's order could collide in the statement's order ('u': its
// columns, 'x': it has an expression or predicate); a trigger that fires
// under the replica role, or a rule, would see one statement instead of
// one per row ('t').
func setLimitsSQL(qname string) string {
	rel := quoteLiteral(qname) + "::pg_catalog.regclass"
	return `SELECT 'u', a.attname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
			ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = ` + rel + ` AND (i.indisunique OR i.indisexclusion)
		UNION ALL SELECT 'x', '' FROM pg_catalog.pg_index i
		WHERE i.indrelid = ` + rel + ` AND (i.indisunique OR i.indisexclusion) AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
		UNION ALL SELECT 't', '' FROM pg_catalog.pg_trigger
		WHERE tgrelid = ` + rel + ` AND NOT tgisinternal AND tgenabled IN ('A', 'R')
		UNION ALL SELECT 't', '' FROM pg_catalog.pg_class WHERE oid = ` + rel + ` AND relhasrules`
}

func (tt *twinTable) readSetLimits(rows [][][]byte) {
	tt.uniq = map[string]bool{}
	for _, r := range rows {
		switch string(r[0]) {
		case "u":
			tt.uniq[string(r[1])] = true
		case "x":
			tt.uniqAll = true
		case "t":
			tt.rowByRow = true
		}
	}
}
