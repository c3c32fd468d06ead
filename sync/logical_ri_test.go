package twinsync

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// TestFullIdentityApplyUsesIndex: an UPDATE or DELETE of a REPLICA
// IDENTITY FULL table finds its row through an index on the table when
// there is one (issue 14: IS NOT DISTINCT FROM made every change a full
// scan), and still changes one row of duplicates, NULLs matched as NULLs.
func TestFullIdentityApplyUsesIndex(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Start(t, pgtest.Options{})
	c.Exec(t, "postgres", `CREATE TABLE ri (a int, b text, j json, n numeric);
		CREATE INDEX ri_a ON ri (a);
		INSERT INTO ri SELECT i, 'b' || i, '{"k": 1}', i FROM generate_series(1, 20000) i;
		INSERT INTO ri VALUES (7, 'b7', '{"k": 1}', 7), (8, NULL, '{"k": 1}', NULL);
		ANALYZE ri`)
	conn, err := pgconn.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	a := newApplier(conn, zerolog.Nop())
	rs := &relState{ver: 1, qname: `public.ri`, maskAt: []int{-1, -1, -1, -1}, rel: &pgoutput.Relation{
		RelationID: 1, Namespace: "public", RelationName: "ri", ReplicaIdentity: 'f',
		Columns: []pgoutput.RelationColumn{{Name: "a", DataType: 23}, {Name: "b", DataType: 25}, {Name: "j", DataType: 114}, {Name: "n", DataType: 1700}}}}
	txt := func(s string) pgoutput.TupleColumn {
		return pgoutput.TupleColumn{Kind: pgoutput.TupleText, Data: []byte(s)}
	}
	null := pgoutput.TupleColumn{Kind: pgoutput.TupleNull}
	row := func(a, b string, n string) pgoutput.Tuple {
		bv, nv := txt(b), txt(n)
		if b == "" {
			bv = null
		}
		if n == "" {
			nv = null
		}
		return pgoutput.Tuple{txt(a), bv, txt(`{"k": 1}`), nv}
	}
	if err := a.begin(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []*change{
		{kind: 'D', rs: rs, oldType: pgoutput.OldTupleFull, oldT: row("7", "b7", "7")}, // one of two duplicates
		{kind: 'D', rs: rs, oldType: pgoutput.OldTupleFull, oldT: row("8", "", "")},    // NULLs
		{kind: 'U', rs: rs, oldType: pgoutput.OldTupleFull, oldT: row("9", "b9", "9"), newT: row("9", "b9", "90")},
	} {
		if err := a.apply(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	a.open = false
	for q, want := range map[string]string{
		"SELECT count(*) FROM ri WHERE a = 7":               "1",
		"SELECT count(*) FROM ri WHERE a = 8 AND b IS NULL": "0",
		"SELECT count(*) FROM ri WHERE a = 8":               "1",
		"SELECT n FROM ri WHERE a = 9":                      "90",
		"SELECT count(*) FROM ri":                           "20000",
	} {
		if got := c.Psql(t, "postgres", q); got != want {
			t.Errorf("%s = %s, want %s", q, got, want)
		}
	}

	// The statements as prepared, planned as the apply runs them after
	// five executions: generic.
	if err := a.exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	res, err := conn.Exec(ctx, `SELECT name, array_to_string(parameter_types::text[], ',') FROM pg_catalog.pg_prepared_statements`).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sample := map[string]string{"integer": "1", "text": "'b1'", "json": `'{"k": 1}'`, "numeric": "1"}
	var plans []string
	for _, r := range res[0].Rows {
		var args []string
		for _, typ := range strings.Split(string(r[1]), ",") {
			args = append(args, sample[typ])
		}
		ex, err := conn.Exec(ctx, "EXPLAIN EXECUTE "+string(r[0])+"("+strings.Join(args, ", ")+")").ReadAll()
		if err != nil {
			t.Fatalf("explain %s (%s): %v", r[0], r[1], err)
		}
		var plan strings.Builder
		for _, l := range ex[0].Rows {
			plan.Write(l[0])
			plan.WriteByte('\n')
		}
		plans = append(plans, plan.String())
	}
	if len(plans) != 3 {
		t.Fatalf("%d statements prepared, want 3 (two deletes: one with NULLs; an update): %q", len(plans), plans)
	}
	for _, p := range plans {
		if strings.Contains(p, "Seq Scan") || !strings.Contains(p, "Index") {
			t.Errorf("a REPLICA IDENTITY FULL change does not use the index on a:\n%s", p)
		}
	}
}
