package twinsync

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/anonymize"
)

// Filter selects the tables ReadCatalog describes: the same selection the
// dump sync copies (sync.include_schemas, sync.exclude_tables).
type Filter = selection

// CatalogSampleRows bounds how many rows per table ReadCatalog samples for
// PII detection and the leak check's exact values.
const CatalogSampleRows = 20

// sampleTablesample is the table size (reltuples) above which sampling uses
// TABLESAMPLE SYSTEM instead of the first rows: the first rows of a big
// table are its oldest, and reading a few pages is enough.
const sampleTablesample = 50000

// ReadCatalog describes the source tables for anonymize.BuildPlan: leaf
// tables with their columns (type, typmod, NOT NULL), PRIMARY KEY and UNIQUE
// constraints and unique indexes, foreign keys, and a bounded sample of the
// values of every column that can hold PII. Samples stay in memory; nothing
// here logs or returns them in errors.
func ReadCatalog(ctx context.Context, conn *pgx.Conn, filter Filter) (*anonymize.Catalog, error) {
	rows, err := conn.Query(ctx, `SELECT c.oid, n.nspname, c.relname, c.reltuples::int8,
			coalesce((SELECT pn.nspname || '.' || pc.relname FROM pg_catalog.pg_class pc
				JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
				WHERE c.relispartition AND pc.oid = pg_catalog.pg_partition_root(c.oid)), '')
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence <> 't'
			AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
				AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, fmt.Errorf("read catalog: list tables: %w", err)
	}
	type rel struct {
		oid    uint32
		schema string
		name   string
		tuples int64
		parent string
	}
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		return x, r.Scan(&x.oid, &x.schema, &x.name, &x.tuples, &x.parent)
	})
	if err != nil {
		return nil, fmt.Errorf("read catalog: list tables: %w", err)
	}
	cat := &anonymize.Catalog{}
	for _, r := range rels {
		if !filter.Includes(r.schema, r.name) {
			continue
		}
		t := anonymize.Table{Schema: r.schema, Name: r.name, Parent: r.parent}
		if err := readColumns(ctx, conn, r.oid, &t); err != nil {
			return nil, fmt.Errorf("read catalog: %s.%s: %w", r.schema, r.name, err)
		}
		if err := readConstraints(ctx, conn, r.oid, &t); err != nil {
			return nil, fmt.Errorf("read catalog: %s.%s: %w", r.schema, r.name, err)
		}
		if err := sampleTable(ctx, conn, &t, r.tuples); err != nil {
			return nil, fmt.Errorf("read catalog: sample %s.%s: %w", r.schema, r.name, err)
		}
		cat.Tables = append(cat.Tables, t)
	}
	return cat, nil
}

// readColumns reads the copied columns (generated ones are computed by the
// target) in attribute order. Domains are described by their base type.
func readColumns(ctx context.Context, conn *pgx.Conn, oid uint32, t *anonymize.Table) error {
	rows, err := conn.Query(ctx, `SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod),
			CASE WHEN ty.typtype = 'd' THEN bt.typname ELSE ty.typname END::text,
			CASE WHEN ty.typtype = 'd' THEN ty.typtypmod ELSE a.atttypmod END,
			a.attnotnull OR (ty.typtype = 'd' AND ty.typnotnull)
		FROM pg_catalog.pg_attribute a
		JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
		LEFT JOIN pg_catalog.pg_type bt ON bt.oid = ty.typbasetype
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, oid)
	if err != nil {
		return fmt.Errorf("columns: %w", err)
	}
	t.Columns, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (anonymize.Column, error) {
		var c anonymize.Column
		return c, r.Scan(&c.Name, &c.Type, &c.Base, &c.Typmod, &c.NotNull)
	})
	if err != nil {
		return fmt.Errorf("columns: %w", err)
	}
	return nil
}

// readConstraints reads PRIMARY KEY / UNIQUE constraints, unique indexes that
// back no constraint (their plain columns: an expression or partial index
// still forbids duplicates there, so it counts), and foreign keys.
func readConstraints(ctx context.Context, conn *pgx.Conn, oid uint32, t *anonymize.Table) error {
	rows, err := conn.Query(ctx, `SELECT con.conname::text, con.contype::text,
			array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
			coalesce(rn.nspname::text, ''), coalesce(rc.relname::text, ''),
			array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
		FROM pg_catalog.pg_constraint con
		LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
		LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
		WHERE con.conrelid = $1 AND con.contype IN ('p', 'u', 'f')
		UNION ALL
		SELECT ic.relname::text, 'i',
			array(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
				JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o),
			'', '', '{}'::text[]
		FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		WHERE i.indrelid = $1 AND i.indisunique
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
		ORDER BY 2, 1`, oid)
	if err != nil {
		return fmt.Errorf("constraints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, kind, refSchema, refTable string
		var cols, refCols []string
		if err := rows.Scan(&name, &kind, &cols, &refSchema, &refTable, &refCols); err != nil {
			return fmt.Errorf("constraints: %w", err)
		}
		switch kind {
		case "p":
			t.Constraints = append(t.Constraints, anonymize.Constraint{Name: name, Kind: "primary key", Columns: cols})
		case "u":
			t.Constraints = append(t.Constraints, anonymize.Constraint{Name: name, Kind: "unique", Columns: cols})
		case "i":
			if len(cols) > 0 {
				t.Constraints = append(t.Constraints, anonymize.Constraint{Name: name, Kind: "unique index", Columns: cols})
			}
		case "f":
			t.ForeignKeys = append(t.ForeignKeys, anonymize.ForeignKey{Name: name, Columns: cols,
				RefSchema: refSchema, RefTable: refTable, RefColumns: refCols})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("constraints: %w", err)
	}
	return nil
}

// sampled says whether a column's values are worth sampling: anything that
// can hold text, plus the types transformers parse (to test rules on real
// values before any row is copied).
func sampled(base string) bool {
	if base == "_bytea" {
		return false // whole arrays of photos: too big to sample
	}
	switch strings.TrimPrefix(base, "_") {
	case "text", "varchar", "bpchar", "citext", "name", "json", "jsonb", "xml", "char",
		"inet", "cidr", "date", "timestamp", "timestamptz", "numeric", "uuid", "bytea":
		return true
	}
	return false
}

// byteaSampleBytes is how much of a bytea value is sampled: enough for the
// magic bytes that tell photos and documents (DICOM's sit at byte 128).
const byteaSampleBytes = 160

func sampleTable(ctx context.Context, conn *pgx.Conn, t *anonymize.Table, tuples int64) error {
	var idx []int
	var exprs []string
	for i, c := range t.Columns {
		if sampled(c.Base) {
			idx = append(idx, i)
			if c.Base == "bytea" {
				// Hex whatever bytea_output says, and only the head of the value.
				exprs = append(exprs, fmt.Sprintf(`'\x' || pg_catalog.encode(pg_catalog.substring(%s, 1, %d), 'hex')`, pgx.Identifier{c.Name}.Sanitize(), byteaSampleBytes))
				continue
			}
			exprs = append(exprs, pgx.Identifier{c.Name}.Sanitize()+"::text")
		}
	}
	if len(idx) == 0 {
		return nil
	}
	from := " FROM ONLY " + pgx.Identifier{t.Schema, t.Name}.Sanitize()
	limit := fmt.Sprintf(" LIMIT %d", CatalogSampleRows)
	if tuples > sampleTablesample {
		pct := float64(CatalogSampleRows) * 20 * 100 / float64(tuples)
		n, err := sampleRows(ctx, conn, t, idx, "SELECT "+strings.Join(exprs, ", ")+from+
			fmt.Sprintf(" TABLESAMPLE SYSTEM (%.6f)", min(pct, 100))+limit)
		if err != nil || n >= CatalogSampleRows/2 {
			return err
		}
		// Too few pages drawn: fall back to the first rows.
		for i := range idx {
			t.Columns[idx[i]].Samples = nil
		}
	}
	_, err := sampleRows(ctx, conn, t, idx, "SELECT "+strings.Join(exprs, ", ")+from+limit)
	return err
}

func sampleRows(ctx context.Context, conn *pgx.Conn, t *anonymize.Table, idx []int, q string) (int, error) {
	rows, err := conn.Query(ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		for k, v := range rows.RawValues() {
			if v != nil {
				c := &t.Columns[idx[k]]
				c.Samples = append(c.Samples, append([]byte(nil), v...))
			}
		}
	}
	return n, rows.Err()
}
