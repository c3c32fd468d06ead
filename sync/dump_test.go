package twinsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// demoSchema is a small shop: FKs, a UNIQUE citext email (an extension), jsonb,
// arrays, an enum, a generated and an identity column, a free-standing
// sequence, an index, a trigger, a view, and a second schema with a table the
// tests exclude. Values include tabs, newlines, backslashes and unicode.
const demoSchema = shopSchema + `
CREATE INDEX orders_customer_idx ON orders (customer_id, placed_at);
CREATE VIEW customer_totals AS
	SELECT c.id, c.email, sum(o.total) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.email;
CREATE MATERIALIZED VIEW order_stats AS SELECT status, count(*) AS n FROM orders GROUP BY status;
CREATE MATERIALIZED VIEW order_stats_total AS SELECT sum(n) AS n FROM order_stats;
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY orders_read ON orders FOR SELECT TO app_reader USING (status = 'paid');
CREATE TABLE events (id bigint, at date NOT NULL, kind text) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE notes (id int, body text);
CREATE TABLE special_notes (extra text) INHERITS (notes);
CREATE SCHEMA audit;
CREATE TABLE audit.events (id bigserial PRIMARY KEY, payload text);
`

func fillDemo(t *testing.T, c *pgtest.Cluster, customers int) {
	t.Helper()
	c.Exec(t, "app", fmt.Sprintf(shopFill+`
INSERT INTO events SELECT i, '2024-03-01'::date + i * 100, 'k' FROM generate_series(1, 6) i;
INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c');
INSERT INTO special_notes VALUES (4, 'd', 'x'), (5, 'e', 'y');
INSERT INTO audit.events (payload) SELECT 'event ' || i FROM generate_series(1, 100) i;
REFRESH MATERIALIZED VIEW order_stats;
REFRESH MATERIALIZED VIEW order_stats_total;
ANALYZE;
`, customers))
}

// newTarget stands in for twin.ReplaceMain's fresh main: an empty database
// owned by the NOLOGIN owner role.
func newTarget(t *testing.T) (*pgtest.Cluster, target) {
	t.Helper()
	c := pgtest.Start(t, pgtest.Options{})
	c.Exec(t, "postgres", "CREATE ROLE pgtwin_owner NOLOGIN")
	c.Exec(t, "postgres", "CREATE DATABASE app OWNER pgtwin_owner")
	return c, target{ConnString: c.ConnString("app"), BinDir: c.Bin}
}

func newSource(t *testing.T, customers int) *pgtest.Cluster {
	t.Helper()
	c := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}})
	c.Exec(t, "postgres", "CREATE ROLE app_reader NOLOGIN")
	c.Exec(t, "app", demoSchema)
	if customers > 0 {
		fillDemo(t, c, customers)
	}
	return c
}

// hashMasker replaces the chosen columns of each table with an uppercase
// keyed-looking hash: unique for unique inputs, NULL stays NULL. Raw tabs
// only ever separate fields in COPY text, so splitting on them is exact.
type hashMasker map[string][]string // "schema.table" → columns

type hashRows struct{ masked []bool }

func (h hashMasker) Table(schema, table string, columns []string) (rowMasker, error) {
	cols := h[schema+"."+table]
	if len(cols) == 0 {
		return nil, nil
	}
	hr := hashRows{masked: make([]bool, len(columns))}
	for _, c := range cols {
		found := false
		for i, name := range columns {
			if name == c {
				hr.masked[i], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("no column %s in %s.%s", c, schema, table)
		}
	}
	return hr, nil
}

func (h hashRows) MaskCopyLine(dst, line []byte) ([]byte, error) {
	fields := bytes.Split(line, []byte{'\t'})
	if len(fields) != len(h.masked) {
		return dst, fmt.Errorf("got %d fields, want %d", len(fields), len(h.masked))
	}
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, '\t')
		}
		if h.masked[i] && string(f) != `\N` {
			sum := sha256.Sum256(f)
			dst = append(dst, strings.ToUpper(hex.EncodeToString(sum[:10]))...)
			continue
		}
		dst = append(dst, f...)
	}
	return dst, nil
}

var demoMasks = hashMasker{
	"public.customers": {"email", "full_name", "phone"},
	"public.payments":  {"card_number"},
}

func plan(m masker) func(context.Context, *pgx.Conn) (masker, error) {
	return func(context.Context, *pgx.Conn) (masker, error) { return m, nil }
}

func testLogger(t *testing.T) (zerolog.Logger, *syncBuffer) {
	var b syncBuffer
	return zerolog.New(&b), &b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func query[T any](t *testing.T, c *pgtest.Cluster, sql string) T {
	t.Helper()
	var v T
	conn := c.Connect(t, "app")
	if err := conn.QueryRow(context.Background(), sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestDumpSyncDemoSchema(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, 2000)
	tgtCluster, tgt := newTarget(t)
	log, logs := testLogger(t)
	d := &dumper{
		Source:    source{URL: src.ConnString("app")},
		Parallel:  3,
		Selection: selection{ExcludeTables: []string{"audit.events"}},
		Plan:      plan(demoMasks),
		Backoff:   backoff{Initial: 10 * time.Millisecond, Attempts: 3},
		Log:       log,
	}
	var p progress
	if err := d.Run(ctx, tgt, &p); err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, logs)
	}
	st := p.Stats()
	if st.Step != stepDone || st.TablesDone != 8 || st.TablesTotal != 8 {
		t.Errorf("progress = %+v, want step done, 8/8 tables", st)
	}
	if want := int64(2000 + 3000 + 10000 + 10000 + 6 + 5); st.Rows != want || st.Bytes == 0 {
		t.Errorf("progress rows = %d bytes = %d, want %d rows and some bytes", st.Rows, st.Bytes, want)
	}

	for _, tbl := range []string{"customers", "addresses", "orders", "payments"} {
		s, g := query[int64](t, src, "SELECT count(*) FROM "+tbl), query[int64](t, tgtCluster, "SELECT count(*) FROM "+tbl)
		if s != g || s == 0 {
			t.Errorf("%s: source %d rows, twin %d", tbl, s, g)
		}
	}
	// Partitions and inheritance children once each, not again via a parent.
	for q, want := range map[string]int64{
		"SELECT count(*) FROM events": 6, "SELECT count(*) FROM events_2024": 3,
		"SELECT count(*) FROM notes": 5, "SELECT count(*) FROM ONLY notes": 3,
	} {
		if n := query[int64](t, tgtCluster, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM audit.events"); n != 0 {
		t.Errorf("excluded audit.events has %d rows in the twin, want its definition and no rows", n)
	}

	// Unmasked columns byte-identical; masked ones differ in every row.
	same := map[string][]string{
		"customers": {"id", "profile", "tags", "mood", "created_at"},
		"addresses": {"id", "customer_id", "street", "city", "postcode"},
		"orders":    {"id", "customer_id", "order_no", "total", "ratio", "placed_at", "status", "updated_at"},
		"payments":  {"id", "order_id", "amount", "meta"},
	}
	for tbl, cols := range same {
		for _, col := range cols {
			q := fmt.Sprintf("SELECT md5(string_agg(quote_nullable(%s::text), ',' ORDER BY id)) FROM %s", col, tbl)
			if s, g := query[string](t, src, q), query[string](t, tgtCluster, q); s != g {
				t.Errorf("%s.%s differs between source and twin (md5 %s vs %s)", tbl, col, s, g)
			}
		}
	}
	masked := map[string][]string{"customers": {"email", "full_name", "phone"}, "payments": {"card_number"}}
	for tbl, cols := range masked {
		for _, col := range cols {
			srcVals := map[string]bool{}
			for _, v := range column(t, src, tbl, col) {
				srcVals[v] = true
			}
			for _, v := range column(t, tgtCluster, tbl, col) {
				if v != "<null>" && srcVals[v] {
					t.Fatalf("%s.%s: source value reached the twin unmasked", tbl, col)
				}
			}
		}
	}
	// The generated column was computed by the twin from the masked name.
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM customers WHERE name_upper IS DISTINCT FROM upper(full_name)"); n != 0 {
		t.Errorf("%d rows with name_upper not generated from the masked full_name", n)
	}

	// Post-data: constraints validated, index, trigger, view; FKs hold.
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated"); n != 3 {
		t.Errorf("validated foreign keys = %d, want 3", n)
	}
	if n := query[int64](t, tgtCluster, `SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL`); n != 0 {
		t.Errorf("%d orphaned orders", n)
	}
	for what, q := range map[string]string{
		"index orders_customer_idx": "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_customer_idx'",
		"unique email":              "SELECT count(*) FROM pg_constraint WHERE conname = 'customers_email_key'",
		"trigger orders_touch":      "SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_touch'",
		"view customer_totals":      "SELECT count(*) FROM pg_views WHERE viewname = 'customer_totals'",
		"citext extension":          "SELECT count(*) FROM pg_extension WHERE extname = 'citext'",
		"policy orders_read":        "SELECT count(*) FROM pg_policies WHERE policyname = 'orders_read' AND roles = '{app_reader}'",
	} {
		if n := query[int64](t, tgtCluster, q); n != 1 {
			t.Errorf("%s: found %d, want 1", what, n)
		}
	}
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM customer_totals"); n == 0 {
		t.Error("view customer_totals returns no rows")
	}
	if n := query[int64](t, tgtCluster, "SELECT n FROM order_stats_total"); n != 10000 {
		t.Errorf("materialized views not refreshed from the twin's rows: order_stats_total = %d, want 10000", n)
	}

	// Owned by the owner role: every relation, type and function of ours.
	for what, q := range map[string]string{
		"relations": `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname IN ('public', 'audit') AND pg_get_userbyid(c.relowner) <> 'pgtwin_owner'`,
		"functions": `SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> 'pgtwin_owner'
			AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')`,
		"enum":         `SELECT count(*) FROM pg_type WHERE typname = 'mood' AND pg_get_userbyid(typowner) <> 'pgtwin_owner'`,
		"schema audit": `SELECT count(*) FROM pg_namespace WHERE nspname = 'audit' AND pg_get_userbyid(nspowner) <> 'pgtwin_owner'`,
	} {
		if n := query[int64](t, tgtCluster, q); n != 0 {
			t.Errorf("%d %s not owned by pgtwin_owner", n, what)
		}
	}

	// Sequences as on the source, so new rows never collide.
	for _, seq := range []string{"customers_id_seq", "addresses_id_seq", "orders_id_seq", "payments_id_seq", "order_no_seq", "audit.events_id_seq"} {
		q := "SELECT last_value::text || '/' || is_called::text FROM " + seq
		if s, g := query[string](t, src, q), query[string](t, tgtCluster, q); s != g {
			t.Errorf("sequence %s: source %s, twin %s", seq, s, g)
		}
	}
	tgtCluster.Exec(t, "app", "INSERT INTO customers (email, full_name) VALUES ('new@example.com', 'New')")
	if id := query[int64](t, tgtCluster, "SELECT id FROM customers WHERE email = 'new@example.com'"); id != 2001 {
		t.Errorf("new identity value in the twin = %d, want 2001", id)
	}

	if strings.Contains(logs.String(), "user1@example.com") || strings.Contains(logs.String(), "4111 1111") {
		t.Error("the log contains row data")
	}
}

// column returns a column's values (as text, "<null>" for NULL).
func column(t *testing.T, c *pgtest.Cluster, tbl, col string) []string {
	t.Helper()
	conn := c.Connect(t, "app")
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT coalesce(%s::text, '<null>') FROM %s ORDER BY id", col, tbl))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

func TestDumpSyncPlanFailureCopiesNothing(t *testing.T) {
	src := newSource(t, 10)
	tgtCluster, tgt := newTarget(t)
	planErr := errors.New("unclassified PII: public.customers.phone")
	d := &dumper{
		Source: source{URL: src.ConnString("app")},
		Plan:   func(context.Context, *pgx.Conn) (masker, error) { return nil, planErr },
	}
	err := d.Run(context.Background(), tgt, nil)
	var se *stepError
	if !errors.As(err, &se) || se.Step != stepPlan || !errors.Is(err, planErr) {
		t.Fatalf("Run = %v, want a StepError in step plan wrapping the plan's error", err)
	}
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"); n != 0 {
		t.Errorf("the twin got %d relations after a failed plan check", n)
	}

	// A masker refusing one table also stops the run before any row moves.
	d.Plan = plan(maskerFunc(func(schema, table string, _ []string) (rowMasker, error) {
		if table == "payments" {
			return nil, errors.New("column card_number is unclassified")
		}
		return nil, nil
	}))
	err = d.Run(context.Background(), tgt, nil)
	if !errors.As(err, &se) || se.Step != stepSchema || !strings.Contains(err.Error(), "card_number") {
		t.Fatalf("Run = %v, want a StepError in step schema naming the column", err)
	}
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"); n != 0 {
		t.Errorf("the twin got %d relations after the masker refused a table", n)
	}

	// include_schemas: only audit's tables are created and filled.
	only, onlyTgt := newTarget(t)
	d.Plan = plan(hashMasker{})
	d.Selection = selection{IncludeSchemas: []string{"audit"}}
	if err := d.Run(context.Background(), onlyTgt, nil); err != nil {
		t.Fatalf("Run with include_schemas: %v", err)
	}
	if n := query[int64](t, only, "SELECT count(*) FROM audit.events"); n != 100 {
		t.Errorf("audit.events has %d rows, want 100", n)
	}
	if n := query[int64](t, only, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"); n != 0 {
		t.Errorf("%d relations of schema public synced though include_schemas is [audit]", n)
	}

	// No plan at all is refused.
	d.Plan = nil
	if err := d.Run(context.Background(), tgt, nil); err == nil || !strings.Contains(err.Error(), "masking plan") {
		t.Fatalf("Run without a plan = %v, want a refusal", err)
	}
}
