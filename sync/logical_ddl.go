package twinsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// Schema changes. A Relation message says what a table looks like at that
// point of the stream, by column name. What the twin has is recorded in
// pgtwin_sync.relations by the source's attribute numbers, which a rename
// keeps and a drop and add do not, so the two together tell a rename from
// a drop plus an add. What can be applied exactly is applied in the apply's
// own transaction; what the stream cannot reproduce (rows whose values
// only the source computed) makes the table be copied again (recopy).

const relationsDDL = `CREATE TABLE IF NOT EXISTS pgtwin_sync.relations (
	slot text NOT NULL,
	relid oid NOT NULL,
	nspname text NOT NULL,
	relname text NOT NULL,
	cols jsonb NOT NULL,
	copied_lsn pg_lsn,
	PRIMARY KEY (slot, relid)
);
ALTER TABLE pgtwin_sync.relations ADD COLUMN IF NOT EXISTS state text`

// relMap is the twin's copy of one source table: its name and, for each
// column the stream sends, the source's attribute number and type.
type relMap struct {
	Schema string   `json:"-"`
	Name   string   `json:"-"`
	Cols   []mapCol `json:"cols"`
}

type mapCol struct {
	Num    int    `json:"n"`
	Name   string `json:"name"`
	Type   uint32 `json:"t"` // 0: not known (bootstrapped from a twin whose type differs)
	Typmod int32  `json:"m"`
	Format string `json:"f"`
}

func (m *relMap) qname() string { return pgx.Identifier{m.Schema, m.Name}.Sanitize() }

// matches reports whether the twin is what r describes.
func (m *relMap) matches(r *pgoutput.Relation) bool {
	if m.Schema != r.Namespace || m.Name != r.RelationName || len(m.Cols) != len(r.Columns) {
		return false
	}
	for i, c := range r.Columns {
		mc := m.Cols[i]
		if mc.Name != c.Name || mc.Type != c.DataType || mc.Typmod != c.TypeModifier {
			return false
		}
	}
	return true
}

// ddlState is the session's view of the twin's tables.
type ddlState struct {
	maps    map[uint32]*relMap
	det     map[uint32]*detached // tables that do not follow the progress
	marked  bool                 // a copy was asked for in the open group
	checked map[uint64]bool      // relation versions the twin matches
	final   pgoutput.LSN         // commit LSN of the transaction being received
	version int                  // the source's server_version_num
	copies  int                  // re-copies so far (temporary slot names)
	// tablesAt is when the source was last checked for new tables.
	tablesAt time.Time
	noticed  map[uint32]string // catalog states checkChanged judged
}

// loadRelations reads what the twin records of its tables.
func (s *session) loadRelations(ctx context.Context, version int) error {
	s.ddl = &ddlState{maps: map[uint32]*relMap{}, det: map[uint32]*detached{}, checked: map[uint64]bool{}, version: version,
		noticed: map[uint32]string{}}
	if err := s.ap.exec(ctx, "SET client_min_messages = warning; "+relationsDDL+"; RESET client_min_messages"); err != nil {
		return fmt.Errorf("relations table: %w", err)
	}
	res, err := s.ap.conn.Exec(ctx, "SELECT relid, nspname, relname, cols::text, coalesce(copied_lsn::text, ''), coalesce(state, '') FROM pgtwin_sync.relations WHERE slot = "+quoteLiteral(s.f.Slot)).ReadAll()
	if err != nil {
		return fmt.Errorf("read relations: %w", redact(err))
	}
	for _, row := range res[0].Rows {
		var relid uint32
		if _, err := fmt.Sscan(string(row[0]), &relid); err != nil {
			return fmt.Errorf("read relations: %w", err)
		}
		m := &relMap{Schema: string(row[1]), Name: string(row[2])}
		if err := json.Unmarshal(row[3], m); err != nil {
			return fmt.Errorf("read relations: %w", err)
		}
		if len(row[4]) > 0 {
			lsn, err := pgoutput.ParseLSN(string(row[4]))
			if err != nil {
				return err
			}
			s.loadDetached(relid, m.Schema, m.Name, string(row[5]), lsn)
			if d := s.ddl.det[relid]; d != nil && len(m.Cols) == 0 {
				continue // a new table marked for its first copy: not in the twin yet
			}
		}
		s.ddl.maps[relid] = m
	}
	return s.bootstrapAll(ctx)
}

// bootstrapAll records the twin's tables it has no record of yet (a twin
// filled before records were kept, or just filled), matching the twin's
// columns by name against the source's catalog now. This is the point
// closest to the copy that made them: a table whose columns no longer all
// match is left to reconcile, which copies it again when it changes.
func (s *session) bootstrapAll(ctx context.Context) error {
	res, err := s.ap.conn.Exec(ctx, `SELECT n.nspname, c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgtwin_sync') AND n.nspname !~ '^pg_'
		ORDER BY n.nspname, c.relname, a.attnum`).ReadAll()
	if err != nil {
		return fmt.Errorf("read twin tables: %w", redact(err))
	}
	type key struct{ schema, name string }
	twin := map[key][][2]string{}
	for _, row := range res[0].Rows {
		k := key{string(row[0]), string(row[1])}
		twin[k] = append(twin[k], [2]string{string(row[2]), string(row[3])})
	}
	known := map[key]bool{}
	for _, m := range s.ddl.maps {
		known[key{m.Schema, m.Name}] = true
	}
	gen := "a.attgenerated = ''"
	if s.ddl.version < 120000 {
		gen = "true"
	}
	rows, err := s.src.Query(ctx, `SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname, a.atttypid, a.atttypmod, pg_catalog.format_type(a.atttypid, a.atttypmod)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND `+gen+`
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
		ORDER BY c.oid, a.attnum`)
	if err != nil {
		return fmt.Errorf("read source tables: %w", redact(err))
	}
	type srcTable struct {
		relid uint32
		cols  map[string]mapCol
	}
	src := map[key]*srcTable{}
	for rows.Next() {
		var relid uint32
		var schema, name string
		var c mapCol
		if err := rows.Scan(&relid, &schema, &name, &c.Num, &c.Name, &c.Type, &c.Typmod, &c.Format); err != nil {
			rows.Close()
			return fmt.Errorf("read source tables: %w", redact(err))
		}
		k := key{schema, name}
		if src[k] == nil {
			src[k] = &srcTable{relid: relid, cols: map[string]mapCol{}}
		}
		src[k].cols[c.Name] = c
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read source tables: %w", redact(err))
	}
	var values []string
	for k, cols := range twin {
		st := src[k]
		if known[k] || st == nil || s.ddl.maps[st.relid] != nil {
			continue
		}
		m := &relMap{Schema: k.schema, Name: k.name}
		for _, tc := range cols {
			c, ok := st.cols[tc[0]]
			if !ok {
				m = nil
				break
			}
			if c.Format != tc[1] {
				c.Type, c.Typmod, c.Format = 0, 0, tc[1]
			}
			m.Cols = append(m.Cols, c)
		}
		if m == nil {
			continue
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		values = append(values, fmt.Sprintf("(%s, %d, %s, %s, %s)", quoteLiteral(s.f.Slot), st.relid, quoteLiteral(k.schema), quoteLiteral(k.name), quoteLiteral(string(b))))
		s.ddl.maps[st.relid] = m
	}
	if len(values) == 0 {
		return nil
	}
	return s.ap.exec(ctx, "INSERT INTO pgtwin_sync.relations (slot, relid, nspname, relname, cols) VALUES "+strings.Join(values, ", ")+" ON CONFLICT DO NOTHING")
}

// saveRelation records m in the apply's open transaction, with the
// table's state.
func (s *session) saveRelation(ctx context.Context, relid uint32, m *relMap) error {
	state, lsn := "", pgoutput.LSN(0)
	if d := s.ddl.det[relid]; d != nil {
		state, lsn = d.state, d.pos
		d.saved, d.qname = d.pos, m.qname()
	}
	if err := saveRelationOn(ctx, s.ap.conn, s.f.Slot, relid, m, m.Schema, m.Name, state, lsn); err != nil {
		return err
	}
	s.ddl.maps[relid] = m
	return nil
}

// srcAttr is one pg_attribute row of a source table.
type srcAttr struct {
	num       int
	name      string
	dropped   bool
	generated bool
	typ       uint32
	typmod    int32
	format    string
	def       *string // default expression
	missing   bool    // rows older than the column hold missingV
	missingV  *string
}

// readAttrs reads a source table's name and columns through conn (which
// may sit in a snapshot). ok is false when the table is gone.
func readAttrs(ctx context.Context, conn *pgx.Conn, relid uint32, version int) (schema, name string, attrs []srcAttr, ok bool, err error) {
	err = conn.QueryRow(ctx, `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, relid).Scan(&schema, &name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil, false, nil
	}
	if err != nil {
		return "", "", nil, false, fmt.Errorf("read source table %d: %w", relid, redact(err))
	}
	gen, miss := "a.attgenerated <> ''", "a.atthasmissing, (a.attmissingval::text::text[])[1]"
	if version < 120000 {
		gen = "false"
	}
	if version < 110000 {
		miss = "false, NULL::text"
	}
	rows, err := conn.Query(ctx, `SELECT a.attnum, a.attname, a.attisdropped, `+gen+`, a.atttypid, a.atttypmod,
			pg_catalog.format_type(a.atttypid, a.atttypmod), pg_catalog.pg_get_expr(d.adbin, d.adrelid), `+miss+`
		FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 ORDER BY a.attnum`, relid)
	if err != nil {
		return "", "", nil, false, fmt.Errorf("read columns of %s.%s: %w", schema, name, redact(err))
	}
	attrs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (srcAttr, error) {
		var a srcAttr
		err := row.Scan(&a.num, &a.name, &a.dropped, &a.generated, &a.typ, &a.typmod, &a.format, &a.def, &a.missing, &a.missingV)
		return a, err
	})
	if err != nil {
		return "", "", nil, false, fmt.Errorf("read columns of %s.%s: %w", schema, name, redact(err))
	}
	return schema, name, attrs, true, nil
}

// live is the columns the stream sends: neither dropped nor generated.
func live(attrs []srcAttr) []srcAttr {
	var out []srcAttr
	for _, a := range attrs {
		if !a.dropped && !a.generated {
			out = append(out, a)
		}
	}
	return out
}

func mapOf(schema, name string, attrs []srcAttr) *relMap {
	m := &relMap{Schema: schema, Name: name}
	for _, a := range live(attrs) {
		m.Cols = append(m.Cols, mapCol{Num: a.num, Name: a.name, Type: a.typ, Typmod: a.typmod, Format: a.format})
	}
	return m
}

// twinCol is a column of a twin table.
type twinCol struct {
	name, format string
	generated    bool
}

// twinColumns reads a twin table's columns; ok is false when it has none.
func (s *session) twinColumns(ctx context.Context, qname string) ([]twinCol, bool, error) {
	if err := s.ap.flush(ctx); err != nil {
		return nil, false, err
	}
	return twinColumnsOn(ctx, s.ap.conn, qname)
}

// twinColumnsOn is twinColumns over conn.
func twinColumnsOn(ctx context.Context, conn *pgconn.PgConn, qname string) ([]twinCol, bool, error) {
	res, err := conn.Exec(ctx, `SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attgenerated <> ''
		FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(`+quoteLiteral(qname)+`) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`).ReadAll()
	if err != nil {
		return nil, false, fmt.Errorf("twin table %s: %w", qname, redact(err))
	}
	var cols []twinCol
	for _, row := range res[0].Rows {
		cols = append(cols, twinCol{name: string(row[0]), format: string(row[1]), generated: string(row[2]) == "t"})
	}
	return cols, len(cols) > 0, nil
}

// reconcile brings the twin's table to what rs describes before its first
// change is applied: nothing to do when it matches; otherwise the change
// is applied as DDL, or the table is copied again.
func (s *session) reconcile(ctx context.Context, rs *relState) error {
	if rs.outside || s.ddl.checked[rs.ver] {
		return nil
	}
	r := rs.rel
	m := s.ddl.maps[r.RelationID]
	if m != nil && m.matches(r) {
		s.ddl.checked[rs.ver] = true
		return nil
	}
	_, _, attrs, ok, err := readAttrs(ctx, s.src, r.RelationID, s.ddl.version)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("table %s is gone from the source while changes of it are being applied: %w", rs.qname, errRetryLater)
	}
	if m == nil {
		var reason string
		if m, reason, err = s.bootstrap(ctx, rs, attrs); err != nil {
			return err
		}
		if reason != "" {
			return s.markCopy(ctx, r.RelationID, r.Namespace, r.RelationName, reason)
		}
		if m.matches(r) {
			s.ddl.checked[rs.ver] = true
			return s.saveRelation(ctx, r.RelationID, m)
		}
	}
	stmts, nm, reason, err := s.diff(rs, m, attrs)
	for attempt := 1; err == nil && reason == reasonMoved && attempt < 6; attempt++ {
		// The walsender may send a transaction a moment before its commit
		// is visible to other sessions: the catalog may be behind, not ahead.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
		if _, _, attrs, ok, err = readAttrs(ctx, s.src, r.RelationID, s.ddl.version); err != nil || !ok {
			break
		}
		stmts, nm, reason, err = s.diff(rs, m, attrs)
	}
	if err != nil {
		return err
	}
	if reason != "" {
		return s.markCopy(ctx, r.RelationID, r.Namespace, r.RelationName, reason)
	}
	if err := s.ap.flush(ctx); err != nil {
		return err
	}
	for _, st := range stmts {
		if err := s.ap.exec(ctx, st.sql); err != nil {
			return fmt.Errorf("apply schema change of %s (%s): %w", rs.qname, st.what, err)
		}
		s.log.Info().Str(logkey.Table, rs.qname).Str(logkey.Change, st.what).Msg("schema change applied to the twin")
	}
	delete(s.ap.tables, m.qname())
	delete(s.ap.tables, rs.qname)
	if err := s.saveRelation(ctx, r.RelationID, nm); err != nil {
		return err
	}
	s.f.setTableWarning(m.qname(), "")
	s.f.setTableWarning(rs.qname, "")
	s.ddl.checked[rs.ver] = true
	return nil
}

// bootstrap records a table the twin has no record of yet (a twin filled
// before the record existed, or a table seen for the first time): the
// twin's columns matched by name against the source's catalog. A twin
// column the source has no more (renamed or dropped while nobody
// followed) cannot be told apart: the table is copied again.
func (s *session) bootstrap(ctx context.Context, rs *relState, attrs []srcAttr) (*relMap, string, error) {
	cols, ok, err := s.twinColumns(ctx, rs.qname)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "the table is not in the twin", nil
	}
	byName := map[string]srcAttr{}
	for _, a := range live(attrs) {
		byName[a.name] = a
	}
	m := &relMap{Schema: rs.rel.Namespace, Name: rs.rel.RelationName}
	for _, c := range cols {
		if c.generated {
			continue
		}
		a, ok := byName[c.name]
		if !ok {
			return nil, "twin column " + c.name + " is not on the source", nil
		}
		mc := mapCol{Num: a.num, Name: c.name, Type: a.typ, Typmod: a.typmod, Format: a.format}
		if c.format != a.format {
			mc.Type, mc.Typmod, mc.Format = 0, 0, c.format
		}
		m.Cols = append(m.Cols, mc)
	}
	return m, "", nil
}

type ddlStmt struct{ sql, what string }

// reasonMoved: the catalog no longer (or not yet) is what the stream describes.
const reasonMoved = "the table changed again on the source since"

// diff turns the difference between the twin (m) and the source (attrs,
// read now, which must be what rs describes) into DDL for the twin, or a
// reason to copy the table again.
func (s *session) diff(rs *relState, m *relMap, attrs []srcAttr) ([]ddlStmt, *relMap, string, error) {
	r := rs.rel
	// The catalog may be ahead of the stream: columns added since come
	// after r's, which must all be there, in order, with their types.
	var cur []srcAttr
	all := live(attrs)
	for _, c := range r.Columns {
		for len(all) > 0 && all[0].name != c.Name {
			all = all[1:]
		}
		if len(all) == 0 || all[0].typ != c.DataType || all[0].typmod != c.TypeModifier {
			// Dropped, renamed or retyped since: this description is not
			// the catalog's any more, so columns cannot be told by number.
			return nil, nil, reasonMoved, nil
		}
		cur, all = append(cur, all[0]), all[1:]
	}
	byNum := map[int]srcAttr{}
	for _, a := range attrs {
		byNum[a.num] = a
	}
	at := map[int]int{} // attnum → position in r.Columns
	for i, a := range cur {
		at[a.num] = i
	}
	tq := m.qname()
	col := func(n string) string { return pgx.Identifier{n}.Sanitize() }
	var stmts []ddlStmt
	if m.Name != r.RelationName {
		stmts = append(stmts, ddlStmt{"ALTER TABLE " + tq + " RENAME TO " + col(r.RelationName), "table renamed to " + r.RelationName})
		tq = pgx.Identifier{m.Schema, r.RelationName}.Sanitize()
	}
	if m.Schema != r.Namespace {
		stmts = append(stmts, ddlStmt{"ALTER TABLE " + tq + " SET SCHEMA " + col(r.Namespace), "table moved to schema " + r.Namespace})
		tq = rs.qname
	}
	known := map[int]bool{}
	for _, mc := range m.Cols {
		if _, ok := at[mc.Num]; !ok && slices.ContainsFunc(cur, func(a srcAttr) bool { return a.name == mc.Name }) {
			// Dropped and added again under its name: which of the two the
			// stream's values are cannot be told.
			return nil, nil, "column " + mc.Name + " dropped and added again", nil
		}
		known[mc.Num] = true
		a, ok := byNum[mc.Num]
		if !ok || a.dropped || a.generated {
			// CASCADE as the source must have, if anything depended on it.
			stmts = append(stmts, ddlStmt{"ALTER TABLE " + tq + " DROP COLUMN IF EXISTS " + col(mc.Name) + " CASCADE", "column " + mc.Name + " dropped"})
			continue
		}
		i := at[a.num]
		name := mc.Name
		if a.name != mc.Name {
			if rs.maskAt[i] >= 0 {
				// Its old values were masked under the old name's rule;
				// the new name's may differ.
				return nil, nil, "masked column " + mc.Name + " renamed to " + a.name, nil
			}
			stmts = append(stmts, ddlStmt{"ALTER TABLE " + tq + " RENAME COLUMN " + col(mc.Name) + " TO " + col(a.name), "column " + mc.Name + " renamed to " + a.name})
			name = a.name
		}
		if mc.Type != a.typ || mc.Typmod != a.typmod {
			if !widening(mc.Format, a.format) {
				return nil, nil, fmt.Sprintf("column %s changed type from %s to %s", a.name, mc.Format, a.format), nil
			}
			stmts = append(stmts, ddlStmt{"ALTER TABLE " + tq + " ALTER COLUMN " + col(name) + " TYPE " + a.format,
				fmt.Sprintf("column %s widened from %s to %s", name, mc.Format, a.format)})
		}
	}
	for i, a := range cur {
		if known[a.num] {
			continue
		}
		masked := rs.maskAt[i] >= 0
		add := "ALTER TABLE " + tq + " ADD COLUMN IF NOT EXISTS " + col(a.name) + " " + a.format
		switch {
		case a.missing:
			// Rows older than the column read the value the default had
			// when it was added (attmissingval), not the expression.
			v := a.missingV
			if masked && v != nil {
				mv, err := rs.masker.MaskValue(rs.maskAt[i], []byte(*v))
				if err != nil {
					return nil, nil, "", fmt.Errorf("mask the default of %s.%s: %w", rs.qname, a.name, err)
				}
				v = nil
				if mv != nil {
					t := string(mv)
					v = &t
				}
			}
			lit := "NULL"
			if v != nil {
				lit = quoteLiteral(*v)
			}
			stmts = append(stmts, ddlStmt{add + " DEFAULT " + lit, "column " + a.name + " added with its default"})
			alter := "ALTER TABLE " + tq + " ALTER COLUMN " + col(a.name)
			if a.def != nil && !masked && !strings.Contains(*a.def, "nextval(") {
				stmts = append(stmts, ddlStmt{alter + " SET DEFAULT " + *a.def, "default of " + a.name})
			} else {
				stmts = append(stmts, ddlStmt{alter + " DROP DEFAULT", "default of " + a.name})
			}
		case a.def == nil:
			stmts = append(stmts, ddlStmt{add, "column " + a.name + " added"})
		default:
			return nil, nil, fmt.Sprintf("column %s was added with a default whose values for existing rows only the source knows (volatile, or set after the column)", a.name), nil
		}
	}
	return stmts, mapOf(r.Namespace, r.RelationName, cur), "", nil
}

// widening reports a type change that keeps every value's text: what the
// twin holds (masked or not) converts to exactly what the source now has.
func widening(from, to string) bool {
	ints := map[string]int{"smallint": 1, "integer": 2, "bigint": 3}
	if a, b := ints[from], ints[to]; a > 0 && b > 0 {
		return b >= a
	}
	var n, m int
	if _, err := fmt.Sscanf(from, "character varying(%d)", &n); err == nil || from == "character varying" {
		if to == "text" || to == "character varying" {
			return true
		}
		_, err2 := fmt.Sscanf(to, "character varying(%d)", &m)
		return err == nil && err2 == nil && m >= n
	}
	var p, sc, p2, sc2 int
	if _, err := fmt.Sscanf(from, "numeric(%d,%d)", &p, &sc); err == nil {
		if to == "numeric" {
			return true
		}
		_, err2 := fmt.Sscanf(to, "numeric(%d,%d)", &p2, &sc2)
		return err2 == nil && sc2 == sc && p2 >= p
	}
	return false
}
