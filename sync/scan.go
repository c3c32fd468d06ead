package twinsync

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/anonymize"
)

// maxFindingsPerColumn keeps a thoroughly unmasked column from flooding the
// report: a handful of rows is enough to show the column leaks.
const maxFindingsPerColumn = 10

// scanForLeaks feeds the values of every text-like column (text, varchar,
// char, citext, json, jsonb, xml and arrays of them) of every table in the
// database conn is connected to through the checker, reading at most
// rowLimit rows per table (0: all). Findings carry the row's ctid, never the
// value.
func scanForLeaks(ctx context.Context, conn *pgx.Conn, checker *anonymize.Checker, rowLimit int) ([]anonymize.Finding, error) {
	// The database is a branch's: its owner made its objects and may
	// shadow any operator or function an unqualified name would find. The
	// session's search_path is pinned too; the qualified names keep this
	// query safe read on its own.
	rows, err := conn.Query(ctx, `SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text,
			array(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) a.atttypid
				LEFT JOIN pg_catalog.pg_type el ON el.oid OPERATOR(pg_catalog.=) ty.typelem AND ty.typcategory OPERATOR(pg_catalog.=) 'A'
				WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
					AND (coalesce(el.typcategory, ty.typcategory) OPERATOR(pg_catalog.=) 'S'
						OR coalesce(el.typname, ty.typname) OPERATOR(pg_catalog.=) ANY ('{json,jsonb,xml}'::pg_catalog.name[]))
				ORDER BY a.attnum)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
		WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,m}'::pg_catalog."char"[])
			AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[])
			AND n.nspname::pg_catalog.text OPERATOR(pg_catalog.!~) '^pg_(toast|temp)'
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("scan for leaks: list tables: %w", err)
	}
	type rel struct {
		schema, name string
		cols         []string
	}
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		return x, r.Scan(&x.schema, &x.name, &x.cols)
	})
	if err != nil {
		return nil, fmt.Errorf("scan for leaks: list tables: %w", err)
	}
	var findings []anonymize.Finding
	for _, r := range rels {
		if len(r.cols) == 0 {
			continue
		}
		f, err := scanTable(ctx, conn, checker, r.schema, r.name, r.cols, rowLimit)
		if err != nil {
			return findings, fmt.Errorf("scan for leaks: %s.%s: %w", r.schema, r.name, err)
		}
		findings = append(findings, f...)
	}
	return findings, nil
}

func scanTable(ctx context.Context, conn *pgx.Conn, checker *anonymize.Checker, schema, table string, cols []string, rowLimit int) ([]anonymize.Finding, error) {
	exprs := []string{"ctid::pg_catalog.text"}
	for _, c := range cols {
		exprs = append(exprs, pgx.Identifier{c}.Sanitize()+"::pg_catalog.text")
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM ONLY " + pgx.Identifier{schema, table}.Sanitize()
	if rowLimit > 0 {
		q += fmt.Sprintf(" LIMIT %d", rowLimit)
	}
	rows, err := conn.Query(ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []anonymize.Finding
	perCol := make([]int, len(cols))
	for rows.Next() {
		vals := rows.RawValues()
		for i, v := range vals[1:] {
			if v == nil || perCol[i] >= maxFindingsPerColumn {
				continue
			}
			if f := checker.Check(schema, table, cols[i], v); f != nil {
				f.Row = string(vals[0])
				out = append(out, *f)
				perCol[i]++
			}
		}
	}
	return out, rows.Err()
}
