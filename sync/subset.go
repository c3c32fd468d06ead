package twinsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/internal/config"
)

// Subset sync ([sync.subset]) copies a referentially whole slice of the
// source: the rows the root filters select, every row a copied row
// references (always, so no foreign key dangles in the twin) and the rows
// that reference copied rows (per foreign key, unless listed in
// sync.subset_skip_referencing), to a fixed point. The closure is computed
// on the source, set-based, in the sync's exported snapshot: one temporary
// table of ctids per table, grown by one INSERT ... SELECT per foreign key
// and direction and iteration, reading only the rows the previous
// iteration added (semi-naive evaluation), so cycles and self-references
// end when an iteration adds nothing. ctids name row versions, which the
// snapshot keeps stable, so the copy that follows on the same connection
// (temporary tables belong to it) reads exactly the closed set.
//
// Tables connected to no root through any foreign key are copied whole, as
// without a subset. A table connected to a root only through foreign keys
// that are not followed gets the rows the closure reaches, possibly none:
// copying it whole could reference rows the subset left out.

// subsetSpec is the subset configuration as the run uses it.
type subsetSpec struct {
	Roots []subsetRoot
	// Skip holds the foreign keys not followed backwards:
	// skipKey(schema, table, constraint) of the referencing table, or a
	// declared foreign key's canonical entry.
	Skip map[string]bool
	// ForeignKeys are declared in config (sync.subset_foreign_keys), for
	// references the source's catalog does not know.
	ForeignKeys []config.ForeignKey
}

type subsetRoot struct{ Schema, Table, Filter string }

func (s subsetSpec) enabled() bool { return len(s.Roots) > 0 }

func skipKey(schema, table, constraint string) string {
	return schema + "\x00" + table + "\x00" + constraint
}

// subsetFromConfig reads the subset keys of [sync] (sync.subset,
// sync.subset_skip_referencing, sync.subset_foreign_keys); config.Validate
// has checked their form.
func subsetFromConfig(subset map[string]string, skipReferencing, foreignKeys []string) (subsetSpec, error) {
	spec := subsetSpec{Skip: map[string]bool{}}
	for key, filter := range subset {
		schema, tbl, err := config.ParseTableKey(key)
		if err != nil {
			return subsetSpec{}, fmt.Errorf("sync.subset: %q: %w", key, err)
		}
		spec.Roots = append(spec.Roots, subsetRoot{Schema: schema, Table: tbl, Filter: filter})
	}
	sort.Slice(spec.Roots, func(i, j int) bool {
		a, b := spec.Roots[i], spec.Roots[j]
		return a.Schema < b.Schema || a.Schema == b.Schema && a.Table < b.Table
	})
	for _, e := range foreignKeys {
		f, err := config.ParseForeignKey(e)
		if err != nil {
			return subsetSpec{}, fmt.Errorf("sync.subset_foreign_keys: %q: %w", e, err)
		}
		spec.ForeignKeys = append(spec.ForeignKeys, f)
	}
	for _, e := range skipReferencing {
		if f, err := config.ParseForeignKey(e); err == nil {
			spec.Skip[f.String()] = true
			continue
		}
		schema, tbl, con, err := config.ParseConstraintKey(e)
		if err != nil {
			return subsetSpec{}, fmt.Errorf("sync.subset_skip_referencing: %q: %w", e, err)
		}
		spec.Skip[skipKey(schema, tbl, con)] = true
	}
	return spec, nil
}

// subsetTable is a table the closure reaches.
type subsetTable struct {
	t      *table
	set    string // its temporary ctid set, schema-qualified
	filter string // the root filter ("" unless a root)
	rows   int64  // rows in the closure
	// referenced, referencing: rows arrived because copied rows reference
	// them, or because they reference copied rows.
	referenced, referencing bool
}

// fkEdge is one foreign key between two tables of the closure.
type fkEdge struct {
	name                  string // for logs and errors
	child, parent         *subsetTable
	childCols, parentCols []string
	down                  bool // followed from parent rows to the child rows referencing them
}

// subsetRun is a computed closure: its sets live in conn's session, which
// is in the sync's snapshot and must copy the subset tables itself.
type subsetRun struct {
	conn       *pgx.Conn
	tables     []*subsetTable
	byName     map[string]*subsetTable // relKey
	edges      []fkEdge
	iterations int
}

// inSubset reports whether t is copied through the closure (not whole).
func (s *subsetRun) inSubset(t *table) bool {
	return s != nil && s.byName[relKey(t.schema, t.name)] != nil
}

// whole is tables without those the closure copies: what the parallel
// copy takes. Nil-safe: without a subset it is tables.
func (s *subsetRun) whole(tables []*table) []*table {
	if s == nil {
		return tables
	}
	var out []*table
	for _, t := range tables {
		if !s.inSubset(t) {
			out = append(out, t)
		}
	}
	return out
}

// tidScanRows is the largest set copied by a TID scan, which reads only
// the pages holding selected rows, in physical order; its array of row ids
// is held in the source's memory (6 bytes a row). Larger sets are joined
// against a scan of the table. A variable for tests.
var tidScanRows int64 = 4 << 20

// copyOut is the COPY that reads t's rows of the closure; it runs only on
// s.conn.
func (s *subsetRun) copyOut(st *subsetTable) string {
	where := " WHERE ctid = ANY (ARRAY(SELECT rid FROM " + st.set + "))"
	if st.rows > tidScanRows {
		where = " WHERE ctid IN (SELECT rid FROM " + st.set + ")"
	}
	return "COPY (SELECT " + st.t.columnList() + " FROM ONLY " + st.t.qname + where + ") TO STDOUT"
}

// fkRow is a foreign key as the catalog states it, named after the
// constraint it was cloned from (a partition's copy of its parent's).
type fkRow struct {
	schema, table, name string
	child, parent       string // relKey
	childCols           []string
	parentCols          []string
}

// readForeignKeys reads the source's foreign keys between leaf tables.
func readForeignKeys(ctx context.Context, conn *pgx.Conn) ([]fkRow, error) {
	rows, err := conn.Query(ctx, `WITH RECURSIVE top AS (
			SELECT oid AS id, oid AS top, conparentid FROM pg_catalog.pg_constraint WHERE contype = 'f'
			UNION ALL
			SELECT t.id, p.oid, p.conparentid FROM top t JOIN pg_catalog.pg_constraint p ON p.oid = t.conparentid
		)
		SELECT n.nspname::text, r.relname::text, tc.conname::text,
			cn.nspname::text, cc.relname::text, pn.nspname::text, pc.relname::text,
			array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord),
			array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord)
		FROM top JOIN pg_catalog.pg_constraint con ON con.oid = top.id
		JOIN pg_catalog.pg_constraint tc ON tc.oid = top.top
		JOIN pg_catalog.pg_class r ON r.oid = tc.conrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
		JOIN pg_catalog.pg_class cc ON cc.oid = con.conrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = cc.relnamespace
		JOIN pg_catalog.pg_class pc ON pc.oid = con.confrelid JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
		WHERE top.conparentid = 0
		ORDER BY n.nspname, r.relname, tc.conname, con.oid`)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", redact(err))
	}
	fks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (fkRow, error) {
		var f fkRow
		var cs, ct, ps, pt string
		err := row.Scan(&f.schema, &f.table, &f.name, &cs, &ct, &ps, &pt, &f.childCols, &f.parentCols)
		f.child, f.parent = relKey(cs, ct), relKey(ps, pt)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", redact(err))
	}
	return fks, nil
}

// computeSubset computes the closure on conn, which must be in a
// read-write REPEATABLE READ transaction in the sync's snapshot (it
// writes temporary tables only). tables are the tables the sync copies.
func computeSubset(ctx context.Context, conn *pgx.Conn, spec subsetSpec, tables []*table) (*subsetRun, error) {
	byName := map[string]*table{}
	for _, t := range tables {
		byName[relKey(t.schema, t.name)] = t
	}
	fks, err := readForeignKeys(ctx, conn)
	if err != nil {
		return nil, err
	}
	for _, f := range spec.ForeignKeys {
		c, p := byName[relKey(f.ChildSchema, f.ChildTable)], byName[relKey(f.ParentSchema, f.ParentTable)]
		for _, side := range []struct {
			t            *table
			schema, name string
			cols         []string
		}{{c, f.ChildSchema, f.ChildTable, f.ChildColumns}, {p, f.ParentSchema, f.ParentTable, f.ParentColumns}} {
			if side.t == nil {
				return nil, fmt.Errorf("sync.subset_foreign_keys %q: %s.%s is not a table this sync copies", f.String(), side.schema, side.name)
			}
			for _, col := range side.cols {
				if !hasColumn(side.t, col) {
					return nil, fmt.Errorf("sync.subset_foreign_keys %q: %s.%s has no column %q", f.String(), side.schema, side.name, col)
				}
			}
		}
		fks = append(fks, fkRow{schema: "", name: f.String(), child: relKey(c.schema, c.name), parent: relKey(p.schema, p.name), childCols: f.ChildColumns, parentCols: f.ParentColumns})
	}

	// Roots: a partitioned (or inheritance) parent stands for its leaves.
	type seed struct {
		t      *table
		filter string
	}
	var seeds []seed
	for _, root := range spec.Roots {
		if t := byName[relKey(root.Schema, root.Table)]; t != nil {
			seeds = append(seeds, seed{t, root.Filter})
			continue
		}
		var leaves []string
		rows, err := conn.Query(ctx, `SELECT n.nspname::text, c.relname::text
			FROM pg_catalog.pg_partition_tree(
			(SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'p')) p
			JOIN pg_catalog.pg_class c ON c.oid = p.relid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE p.isleaf`, root.Schema, root.Table)
		if err == nil {
			leaves, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
				var schema, name string
				err := row.Scan(&schema, &name)
				return relKey(schema, name), err
			})
		}
		if err != nil {
			return nil, fmt.Errorf("sync.subset %s.%s: %w", root.Schema, root.Table, redact(err))
		}
		found := false
		for _, leaf := range leaves {
			if t := byName[leaf]; t != nil {
				seeds, found = append(seeds, seed{t, root.Filter}), true
			}
		}
		if !found {
			return nil, fmt.Errorf("sync.subset names %s.%s, which is not a table this sync copies (missing in the source, or left out by sync.include_schemas or sync.exclude_tables)", root.Schema, root.Table)
		}
	}

	// The tables connected to a root through any foreign key.
	uf := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		p, ok := uf[x]
		if !ok || p == x {
			return x
		}
		r := find(p)
		uf[x] = r
		return r
	}
	for _, f := range fks {
		if byName[f.child] != nil && byName[f.parent] != nil {
			uf[find(f.child)] = find(f.parent)
		}
	}
	rootSets := map[string]bool{}
	for _, s := range seeds {
		rootSets[find(relKey(s.t.schema, s.t.name))] = true
	}
	s := &subsetRun{conn: conn, byName: map[string]*subsetTable{}}
	for _, t := range tables {
		if !rootSets[find(relKey(t.schema, t.name))] {
			continue
		}
		st := &subsetTable{t: t, set: fmt.Sprintf("pg_temp.pgtwin_subset_%d", len(s.tables))}
		s.tables = append(s.tables, st)
		s.byName[relKey(t.schema, t.name)] = st
		if _, err := conn.Exec(ctx, "CREATE TEMPORARY TABLE "+st.set[len("pg_temp."):]+" (rid tid PRIMARY KEY, gen int NOT NULL)"); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42501" {
				return nil, fmt.Errorf("subset: the source role needs TEMPORARY on the source database (GRANT TEMPORARY ON DATABASE ...): the subset's key sets are temporary tables: %w", redact(err))
			}
			return nil, fmt.Errorf("subset: create key set for %s: %w", t.qname, redact(err))
		}
		if _, err := conn.Exec(ctx, "CREATE INDEX ON "+st.set+" (gen)"); err != nil {
			return nil, fmt.Errorf("subset: %w", redact(err))
		}
	}
	for _, f := range fks {
		c, p := s.byName[f.child], s.byName[f.parent]
		if c == nil || p == nil {
			continue
		}
		name := f.name
		if f.schema != "" {
			name = f.schema + "." + f.table + "." + f.name
		}
		down := !spec.Skip[skipKey(f.schema, f.table, f.name)]
		if f.schema == "" {
			down = !spec.Skip[f.name]
		}
		s.edges = append(s.edges, fkEdge{name: name, child: c, parent: p, childCols: f.childCols, parentCols: f.parentCols, down: down})
	}

	// Generation 0: the roots' rows. prev counts what each set gained in
	// the last generation: a set that gained nothing is not followed.
	prev := map[*subsetTable]int64{}
	for _, sd := range seeds {
		st := s.byName[relKey(sd.t.schema, sd.t.name)]
		st.filter = sd.filter
		// Bind parameter: the extended protocol runs one statement only,
		// whatever the filter holds.
		tag, err := conn.Exec(ctx, "INSERT INTO "+st.set+" (rid, gen) SELECT ctid, $1::int FROM ONLY "+sd.t.qname+
			" WHERE ("+sd.filter+") ON CONFLICT DO NOTHING", 0)
		if err != nil {
			return nil, fmt.Errorf("sync.subset filter of %s.%s: %w", sd.t.schema, sd.t.name, redact(err))
		}
		prev[st] += tag.RowsAffected()
	}
	// Each generation follows every edge from the rows the previous one
	// added, until one adds none.
	for gen := 1; ; gen++ {
		var added int64
		cur := map[*subsetTable]int64{}
		for _, e := range s.edges {
			if prev[e.child] > 0 {
				n, err := s.follow(ctx, e.parent, e.parentCols, e.child, e.childCols, gen, true)
				if err != nil {
					return nil, fmt.Errorf("subset: foreign key %s: %w", e.name, err)
				}
				added, cur[e.parent] = added+n, cur[e.parent]+n
			}
			if e.down && prev[e.parent] > 0 {
				n, err := s.follow(ctx, e.child, e.childCols, e.parent, e.parentCols, gen, false)
				if err != nil {
					return nil, fmt.Errorf("subset: foreign key %s, referencing rows: %w", e.name, err)
				}
				added, cur[e.child] = added+n, cur[e.child]+n
			}
		}
		s.iterations, prev = gen, cur
		if added == 0 {
			break
		}
	}
	for _, st := range s.tables {
		if _, err := conn.Exec(ctx, "ANALYZE "+st.set); err != nil {
			return nil, fmt.Errorf("subset: %w", redact(err))
		}
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+st.set).Scan(&st.rows); err != nil {
			return nil, fmt.Errorf("subset: %w", redact(err))
		}
	}
	return s, nil
}

// follow adds to dst's set, as generation gen, the rows of dst whose
// dstCols match srcCols of the rows src's set gained in generation gen-1.
func (s *subsetRun) follow(ctx context.Context, dst *subsetTable, dstCols []string, src *subsetTable, srcCols []string, gen int, referenced bool) (int64, error) {
	q := "INSERT INTO " + dst.set + " (rid, gen) SELECT d.ctid, $1::int FROM ONLY " + dst.t.qname + " d WHERE (" +
		aliasedCols("d", dstCols) + ") IN (SELECT " + aliasedCols("s", srcCols) + " FROM ONLY " + src.t.qname +
		" s WHERE s.ctid = ANY (ARRAY(SELECT rid FROM " + src.set + " WHERE gen = $2::int))) ON CONFLICT DO NOTHING"
	tag, err := s.conn.Exec(ctx, q, gen, gen-1)
	if err != nil {
		return 0, redact(err)
	}
	if n := tag.RowsAffected(); n > 0 {
		// follow(parent, ..., child, ...) fetches referenced rows.
		if referenced {
			dst.referenced = true
		} else {
			dst.referencing = true
		}
	}
	return tag.RowsAffected(), nil
}

func aliasedCols(alias string, cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = alias + "." + pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// beginSubset starts the read-write REPEATABLE READ transaction the key
// sets need, whatever default_transaction_read_only says.
func beginSubset(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ WRITE")
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "25006" {
		return fmt.Errorf("sync.subset needs a source that accepts temporary tables (the subset's key sets), which a hot standby does not: point source.url at the primary, or empty [sync.subset]: %w", redact(err))
	}
	if err != nil {
		return fmt.Errorf("subset: %w", redact(err))
	}
	return nil
}

// relKey names a table in maps: schema and name, which hold no NUL.
func relKey(schema, name string) string { return schema + "\x00" + name }

func hasColumn(t *table, col string) bool {
	for _, c := range t.columns {
		if c == col {
			return true
		}
	}
	return false
}
