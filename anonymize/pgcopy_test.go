package anonymize_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// The COPY codec agrees with PostgreSQL: it splits and decodes what COPY TO
// writes into exactly the values SELECT returns, encodes those values back
// into the same bytes, and COPY FROM reads its encoding back unchanged.
func TestCopyCodecAgreesWithPostgres(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"codec"}})
	pg.Exec(t, "codec", `
CREATE TABLE tricky (id int, t text, a text[], j jsonb, v varchar(20), b bytea);
CREATE TABLE tricky2 (LIKE tricky);
INSERT INTO tricky VALUES
 (1, E'tab\there', '{"a\tb","c\\d",NULL,"","x,y","{q}"}', '{"k": "line\nbreak \\ tab\t \"q\""}', '', '\x00ff5c'),
 (2, E'new\nline\r\nand cr', '{}', '[1, 2.50, "ünï", null]', NULL, NULL),
 (3, E'back\\slash \\N \\. end\\', ARRAY[E'multi\nline', 'NULL', E'\\'], '"just a string"', E'\b\f\v\x01\x7f', ''),
 (4, 'ünïcödé ✓ 日本語 🎉', '{"with \"quotes\""}', '{}', '\N', '\x5c4e'),
 (5, NULL, NULL, NULL, 'NULL', NULL),
 (6, '', '{""}', 'null', ' ', E'\\x'),
 (7, E'\\\\\\\t\t', ARRAY[E'\t', E'\\t'], '{"\\\\": "\\\\"}', E'\\N', '\x0a0d09');
`)
	conn := pg.Connect(t, "codec")

	var raw bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &raw, "COPY tricky TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(raw.Bytes(), []byte("\n"))
	lines = lines[:len(lines)-1] // after the last newline
	rows, err := conn.Query(ctx, "SELECT id::text, t, a::text, j::text, v::text, b::text FROM tricky", pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		t.Fatal(err)
	}
	var want [][][]byte
	for rows.Next() {
		var row [][]byte
		for _, v := range rows.RawValues() {
			if v == nil {
				row = append(row, nil)
			} else {
				row = append(row, append([]byte{}, v...))
			}
		}
		want = append(want, row)
	}
	if rows.Err() != nil || len(want) != 7 || len(lines) != 7 {
		t.Fatalf("rows %d, COPY lines %d, err %v", len(want), len(lines), rows.Err())
	}
	var encoded []byte
	for i, line := range lines {
		got := anonymize.SplitCopyLine(line)
		if len(got) != len(want[i]) {
			t.Fatalf("row %d: %d fields, want %d", i+1, len(got), len(want[i]))
		}
		for k := range got {
			if (got[k] == nil) != (want[i][k] == nil) || !bytes.Equal(got[k], want[i][k]) {
				t.Errorf("row %d field %d: decoded %q, SELECT gives %q", i+1, k, got[k], want[i][k])
			}
		}
		enc := anonymize.AppendCopyLine(nil, want[i])
		if !bytes.Equal(enc, line) {
			t.Errorf("row %d: encoded %q, PostgreSQL wrote %q", i+1, enc, line)
		}
		encoded = append(encoded, enc...)
	}
	if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(encoded), "COPY tricky2 FROM STDIN"); err != nil {
		t.Fatal(err)
	}
	var diff int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM ((TABLE tricky EXCEPT ALL TABLE tricky2) UNION ALL (TABLE tricky2 EXCEPT ALL TABLE tricky)) d`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Fatalf("%d rows differ after COPY FROM of the codec's encoding", diff)
	}
}
