package twinsync

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// subsetTables is a deep FK graph: customers ← orders ← line_items →
// products, orders ← payments, employees with managers (self-reference),
// line_items ← shipments (composite FK), teams ⇄ projects (a cycle, with
// projects → orders), events → orders known only to the application, and
// settings, related to nothing. Foreign keys are added apart (subsetFKs):
// the twin gets them after the copy, as post-data does, and adding them
// there checks that none dangles.
const subsetTables = `
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, full_name text);
CREATE TABLE products (id int PRIMARY KEY, name text);
CREATE TABLE employees (id int PRIMARY KEY, manager_id int, name text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, sales_rep int, created_at timestamptz NOT NULL);
CREATE TABLE line_items (order_id int, line int, product_id int NOT NULL, qty int, PRIMARY KEY (order_id, line));
CREATE TABLE payments (id int PRIMARY KEY, order_id int NOT NULL, card_number text);
CREATE TABLE shipments (id int PRIMARY KEY, order_id int, line int);
CREATE TABLE teams (id int PRIMARY KEY, lead_project int);
CREATE TABLE projects (id int PRIMARY KEY, team_id int, order_id int);
CREATE TABLE events (id int PRIMARY KEY, order_id int, kind text);
CREATE TABLE settings (k text PRIMARY KEY, v text);
`

const subsetFKs = `
ALTER TABLE employees ADD CONSTRAINT employees_manager_id_fkey FOREIGN KEY (manager_id) REFERENCES employees (id);
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE orders ADD CONSTRAINT orders_sales_rep_fkey FOREIGN KEY (sales_rep) REFERENCES employees (id);
ALTER TABLE line_items ADD CONSTRAINT line_items_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id);
ALTER TABLE line_items ADD CONSTRAINT line_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id);
ALTER TABLE payments ADD CONSTRAINT payments_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id);
ALTER TABLE shipments ADD CONSTRAINT shipments_item_fkey FOREIGN KEY (order_id, line) REFERENCES line_items (order_id, line);
ALTER TABLE projects ADD CONSTRAINT projects_team_id_fkey FOREIGN KEY (team_id) REFERENCES teams (id);
ALTER TABLE projects ADD CONSTRAINT projects_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id);
ALTER TABLE teams ADD CONSTRAINT teams_lead_project_fkey FOREIGN KEY (lead_project) REFERENCES projects (id);
`

const subsetFill = `
INSERT INTO customers SELECT i, 'user' || i || '@example.com', 'Name ' || i FROM generate_series(1, 200) i;
INSERT INTO products SELECT i, 'product ' || i FROM generate_series(1, 100) i;
INSERT INTO employees SELECT i, CASE WHEN i = 1 THEN NULL ELSE i / 2 END, 'emp ' || i FROM generate_series(1, 50) i;
INSERT INTO orders SELECT i, (i * 7) % 200 + 1, i % 50 + 1, '2026-01-01 00:00+00'::timestamptz + i * interval '1 hour' FROM generate_series(1, 1000) i;
INSERT INTO line_items SELECT o, l, (o * 3 + l) % 100 + 1, l FROM generate_series(1, 1000) o, generate_series(1, 3) l;
INSERT INTO payments SELECT i, i, '4111-0000-0000-' || lpad(i::text, 4, '0') FROM generate_series(2, 1000, 2) i;
INSERT INTO shipments SELECT i, i, 1 FROM generate_series(1, 1000, 2) i;
INSERT INTO teams SELECT i, NULL FROM generate_series(1, 10) i;
INSERT INTO projects SELECT i, i % 10 + 1, i * 50 FROM generate_series(1, 20) i;
UPDATE teams SET lead_project = id * 2;
INSERT INTO events SELECT i, i * 2, 'k' FROM generate_series(1, 500) i;
INSERT INTO settings SELECT 'k' || i, 'v' FROM generate_series(1, 5) i;
ANALYZE;
`

// subsetKeyOf is each table's key as text, for comparing row sets.
var subsetKeyOf = map[string]string{
	"customers": "id::text", "products": "id::text", "employees": "id::text", "orders": "id::text",
	"line_items": "order_id || ',' || line", "payments": "id::text", "shipments": "id::text",
	"teams": "id::text", "projects": "id::text", "events": "id::text",
}

// subsetEdges are the references as (child, child key, parent, parent key,
// constraint) for the independent closure in expectedSubset.
var subsetEdges = []struct{ child, ckey, parent, pkey, name, where string }{
	{"employees", "id::text", "employees", "manager_id::text", "employees_manager_id_fkey", "manager_id IS NOT NULL"},
	{"orders", "id::text", "customers", "customer_id::text", "orders_customer_id_fkey", "true"},
	{"orders", "id::text", "employees", "sales_rep::text", "orders_sales_rep_fkey", "sales_rep IS NOT NULL"},
	{"line_items", "order_id || ',' || line", "orders", "order_id::text", "line_items_order_id_fkey", "true"},
	{"line_items", "order_id || ',' || line", "products", "product_id::text", "line_items_product_id_fkey", "true"},
	{"payments", "id::text", "orders", "order_id::text", "payments_order_id_fkey", "true"},
	{"shipments", "id::text", "line_items", "order_id || ',' || line", "shipments_item_fkey", "order_id IS NOT NULL AND line IS NOT NULL"},
	{"projects", "id::text", "teams", "team_id::text", "projects_team_id_fkey", "team_id IS NOT NULL"},
	{"projects", "id::text", "orders", "order_id::text", "projects_order_id_fkey", "order_id IS NOT NULL"},
	{"teams", "id::text", "projects", "lead_project::text", "teams_lead_project_fkey", "lead_project IS NOT NULL"},
	{"events", "id::text", "orders", "order_id::text", eventsFK, "order_id IS NOT NULL"},
}

const eventsFK = "public.events(order_id) -> public.orders(id)"

// expectedSubset computes the closure with one recursive query over every
// reference, independently of computeSubset: table → set of keys.
func expectedSubset(t *testing.T, conn *pgx.Conn, filter string, skip map[string]bool) map[string]map[string]bool {
	t.Helper()
	var edges []string
	for _, e := range subsetEdges {
		edges = append(edges, fmt.Sprintf("SELECT '%s'::text, %s, '%s'::text, %s, %t FROM %s WHERE %s",
			e.child, e.ckey, e.parent, e.pkey, !skip[e.name], e.child, e.where))
	}
	q := `WITH RECURSIVE edge(ct, ck, pt, pk, down) AS MATERIALIZED (` + strings.Join(edges, "\nUNION ALL ") + `),
		sel(t, k) AS (
			SELECT 'orders'::text, id::text FROM orders WHERE ` + filter + `
			UNION
			SELECT CASE WHEN s.t = e.ct AND s.k = e.ck THEN e.pt ELSE e.ct END,
				CASE WHEN s.t = e.ct AND s.k = e.ck THEN e.pk ELSE e.ck END
			FROM sel s JOIN edge e ON (s.t = e.ct AND s.k = e.ck) OR (e.down AND s.t = e.pt AND s.k = e.pk)
		)
		SELECT t, k FROM sel`
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("expected subset: %v", err)
	}
	want := map[string]map[string]bool{}
	for rows.Next() {
		var tb, k string
		if err := rows.Scan(&tb, &k); err != nil {
			t.Fatal(err)
		}
		if want[tb] == nil {
			want[tb] = map[string]bool{}
		}
		want[tb][k] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("expected subset: %v", err)
	}
	return want
}

func diffKeys(t *testing.T, what string, got, want map[string]map[string]bool) {
	t.Helper()
	for tb := range subsetKeyOf {
		var missing, extra []string
		for k := range want[tb] {
			if !got[tb][k] {
				missing = append(missing, k)
			}
		}
		for k := range got[tb] {
			if !want[tb][k] {
				extra = append(extra, k)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing)+len(extra) > 0 {
			t.Errorf("%s: %s: %d rows, want %d; missing %.10v, extra %.10v", what, tb, len(got[tb]), len(want[tb]), missing, extra)
		}
	}
}

func subsetSpecOf(t *testing.T, filter string, skip ...string) subsetSpec {
	t.Helper()
	spec, err := subsetFromConfig(map[string]string{"public.orders": filter}, skip, []string{eventsFK})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func skipSet(skip []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range skip {
		_, _, c, err := config.ParseConstraintKey(s)
		if err == nil {
			m[c] = true
		} else {
			m[s] = true
		}
	}
	return m
}

// subsetRunFor is a dump run's state up to the copy: snapshot exported,
// tables listed with their maskers.
func subsetRunFor(t *testing.T, src *pgtest.Cluster, db string, tgt target) (*run, []*table) {
	t.Helper()
	ctx := context.Background()
	log, _ := testLogger(t)
	d := &dumper{Source: source{URL: src.ConnString(db)}, Backoff: backoff{Initial: 10 * time.Millisecond, Attempts: 2}, Log: log}
	r := &run{d: d, tgt: tgt, p: &progress{}, log: log, parallel: 2, srcVersion: 150000}
	t.Cleanup(r.close)
	if err := r.exportSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	tables, err := r.listTables(ctx, hashMasker{"public.customers": {"email", "full_name"}, "public.payments": {"card_number"}})
	if err != nil {
		t.Fatal(err)
	}
	return r, tables
}

// closureKeys reads the closure's rows back through its key sets.
func closureKeys(t *testing.T, s *subsetRun) map[string]map[string]bool {
	t.Helper()
	got := map[string]map[string]bool{}
	for _, st := range s.tables {
		expr, ok := subsetKeyOf[st.t.name]
		if !ok {
			t.Errorf("table %s is in the subset, but relates to no root", st.t.name)
			continue
		}
		rows, err := s.conn.Query(context.Background(), "SELECT "+expr+" FROM ONLY "+st.t.qname+" WHERE ctid IN (SELECT rid FROM "+st.set+")")
		if err != nil {
			t.Fatal(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		got[st.t.name] = map[string]bool{}
		for _, k := range keys {
			got[st.t.name][k] = true
		}
		if int64(len(keys)) != st.rows {
			t.Errorf("%s: %d rows counted, %d read", st.t.name, st.rows, len(keys))
		}
	}
	return got
}

var subsetSkip = []string{
	"public.orders.orders_customer_id_fkey", "public.orders.orders_sales_rep_fkey",
	"public.employees.employees_manager_id_fkey", "public.line_items.line_items_product_id_fkey",
}

// The closure, computed on the source in the snapshot, is exactly what the
// recursive query finds, through the cycle, the self-reference, the
// composite and the declared foreign key; a skipped foreign key is not
// followed backwards, and following it gives its larger closure.
func testSubsetClosure(t *testing.T, src *pgtest.Cluster, check *pgx.Conn) {
	ctx := context.Background()

	const filter = "created_at > '2026-02-10 00:00+00'"
	var selected, narrow int
	if err := check.QueryRow(ctx, "SELECT count(*) FROM orders WHERE "+filter).Scan(&selected); err != nil {
		t.Fatal(err)
	}
	for _, skip := range [][]string{subsetSkip, subsetSkip[1:]} {
		r, tables := subsetRunFor(t, src, "app", target{})
		s, err := r.startSubset(ctx, subsetSpecOf(t, filter, skip...), tables)
		if err != nil {
			t.Fatalf("startSubset: %v", err)
		}
		want := expectedSubset(t, check, filter, skipSet(skip))
		got := closureKeys(t, s)
		diffKeys(t, fmt.Sprintf("skip %v", skip), got, want)
		for _, w := range s.whole(tables) {
			if w.name != "settings" {
				t.Errorf("table %s copied whole, want only settings", w.name)
			}
		}
		nOrders := len(got["orders"])
		if len(skip) == len(subsetSkip) {
			// Orders outside the filter arrive only through the cycle
			// (project → team → projects → orders), not a customer's others.
			if nOrders <= selected || nOrders > selected+20 {
				t.Errorf("orders in the subset = %d, want the %d selected plus a few through projects", nOrders, selected)
			}
			narrow = nOrders
		} else if nOrders <= 2*narrow {
			t.Errorf("following orders_customer_id_fkey backwards: %d orders, want a customer's other orders too (%d without)", nOrders, narrow)
		}
		if s.iterations < 3 {
			t.Errorf("fixed point after %d iterations: the cycle was not followed", s.iterations)
		}
		s.close()
		r.close()
	}

	// mask plan's lines: the rows per table, why, and what is copied whole.
	notes, err := subsetNotes(ctx, check, selection{}, subsetSpecOf(t, filter, subsetSkip...))
	if err != nil {
		t.Fatalf("subsetNotes: %v", err)
	}
	text := strings.Join(notes, "\n")
	for _, want := range []string{
		fmt.Sprintf("subset: public.orders: %d rows of about 1000 (root: %s; referenced by copied rows)", narrow, filter),
		"subset: public.customers: ", "(referenced by copied rows)",
		"subset: public.settings: copied whole (related to no sync.subset root)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("subset notes lack %q:\n%s", want, text)
		}
	}
	if len(notes) != 11 {
		t.Errorf("%d subset notes, want one per table (11):\n%s", len(notes), text)
	}
}

// A subset twin through the copy: masked, FK-whole (the twin accepts the
// foreign keys afterwards), exactly the closure; a new filter gives the new
// subset.
func testSubsetCopy(t *testing.T, src *pgtest.Cluster, check *pgx.Conn) {
	ctx := context.Background()
	tc := pgtest.Start(t, pgtest.Options{})

	for i, filter := range []string{"created_at > '2026-02-10 00:00+00'", "created_at > '2026-02-05 00:00+00' AND id % 3 = 0"} {
		db := fmt.Sprintf("twin%d", i)
		if i == 1 {
			// The second subset copies as large sets do: a join, no TID scan.
			defer func(n int64) { tidScanRows = n }(tidScanRows)
			tidScanRows = 0
		}
		tc.Exec(t, "postgres", "CREATE DATABASE "+db)
		tc.Exec(t, db, subsetTables)
		r, tables := subsetRunFor(t, src, "app", target{ConnString: tc.ConnString(db)})
		s, err := r.startSubset(ctx, subsetSpecOf(t, filter, subsetSkip...), tables)
		if err != nil {
			t.Fatalf("startSubset: %v", err)
		}
		defer s.close()
		if err := s.copy(ctx, r, nil); err != nil {
			t.Fatalf("subset copy: %v", err)
		}
		// settings, related to nothing, is left to the parallel copy.
		if st := r.p.Stats(); st.TablesDone != len(tables)-1 || st.TablesTotal != len(tables)-1 || len(s.whole(tables)) != 1 {
			t.Errorf("progress %d/%d tables, want %d of them in the subset", st.TablesDone, st.TablesTotal, len(tables)-1)
		}
		tc.Exec(t, db, subsetFKs) // fails on any dangling reference

		twin := tc.Connect(t, db)
		got := map[string]map[string]bool{}
		for tb, expr := range subsetKeyOf {
			rows, err := twin.Query(ctx, "SELECT "+expr+" FROM "+tb)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			got[tb] = map[string]bool{}
			for _, k := range keys {
				got[tb][k] = true
			}
		}
		diffKeys(t, filter, got, expectedSubset(t, check, filter, skipSet(subsetSkip)))
		var plain, cards int
		if err := twin.QueryRow(ctx, `SELECT (SELECT count(*) FROM customers WHERE email LIKE '%@example.com' OR full_name LIKE 'Name %'),
			(SELECT count(*) FROM payments WHERE card_number LIKE '4111-%')`).Scan(&plain, &cards); err != nil {
			t.Fatal(err)
		}
		if plain != 0 || cards != 0 || len(got["customers"]) == 0 || len(got["payments"]) == 0 {
			t.Errorf("twin: %d unmasked customers, %d unmasked cards (want 0), %d customers, %d payments",
				plain, cards, len(got["customers"]), len(got["payments"]))
		}
		r.close()
	}
}

// A partitioned root stands for its leaves; foreign keys to and from a
// partitioned table are followed through the partitions' clones of them,
// and skipped by the parent constraint's name.
func testSubsetPartitioned(t *testing.T, src *pgtest.Cluster) {
	ctx := context.Background()
	src.Exec(t, "postgres", "CREATE DATABASE part")
	src.Exec(t, "part", `
CREATE TABLE accounts (id int PRIMARY KEY);
CREATE TABLE ev (id int, at date, account_id int REFERENCES accounts (id), PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE ev_1 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE ev_2 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE notes (id int PRIMARY KEY, ev_id int, ev_at date, CONSTRAINT notes_ev_fkey FOREIGN KEY (ev_id, ev_at) REFERENCES ev (id, at));
INSERT INTO accounts SELECT generate_series(1, 20);
INSERT INTO ev SELECT i, '2024-01-01'::date + i, i % 20 + 1 FROM generate_series(1, 700) i;
INSERT INTO notes SELECT i, i * 2, '2024-01-01'::date + i * 2 FROM generate_series(1, 350) i;
ANALYZE;`)
	// A source that defaults to read-only transactions still gets its key sets.
	src.Exec(t, "postgres", "ALTER DATABASE part SET default_transaction_read_only = on")
	const filter = "at >= '2025-11-01'"
	want := func(q string) map[string]bool {
		rows, err := src.Connect(t, "part").Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, k := range keys {
			m[k] = true
		}
		return m
	}
	sel := "SELECT id, at FROM ev WHERE " + filter
	// An account's other events are not followed (the partitions' clones of
	// ev_account_id_fkey go by the parent's name).
	for _, skip := range [][]string{{"public.ev.ev_account_id_fkey"}, {"public.ev.ev_account_id_fkey", "public.notes.notes_ev_fkey"}} {
		r, tables := subsetRunFor(t, src, "part", target{})
		spec, err := subsetFromConfig(map[string]string{"public.ev": filter}, skip, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.startSubset(ctx, spec, tables)
		if err != nil {
			t.Fatalf("startSubset: %v", err)
		}
		got := map[string]map[string]bool{}
		for _, st := range s.tables {
			rows, err := s.conn.Query(ctx, "SELECT id::text FROM ONLY "+st.t.qname+" WHERE ctid IN (SELECT rid FROM "+st.set+")")
			if err != nil {
				t.Fatal(err)
			}
			keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			got[st.t.name] = map[string]bool{}
			for _, k := range keys {
				got[st.t.name][k] = true
			}
		}
		notes := "SELECT id::text FROM notes WHERE (ev_id, ev_at) IN (" + sel + ")"
		if len(skip) > 1 {
			notes = "SELECT id::text FROM notes WHERE false"
		}
		expect := map[string]map[string]bool{
			"ev_1":     want("SELECT id::text FROM ev_1 WHERE false"),
			"ev_2":     want("SELECT id::text FROM ev_2 WHERE " + filter),
			"accounts": want("SELECT DISTINCT account_id::text FROM ev WHERE " + filter),
			"notes":    want(notes),
		}
		for tb, w := range expect {
			if len(got[tb]) != len(w) {
				t.Errorf("skip %v: %s: %d rows, want %d", skip, tb, len(got[tb]), len(w))
			}
			for k := range w {
				if !got[tb][k] {
					t.Errorf("skip %v: %s: row %s missing", skip, tb, k)
					break
				}
			}
		}
		if len(expect["notes"]) == 0 && len(skip) == 1 {
			t.Fatal("test data: no note references a selected event")
		}
		s.close()
		r.close()
	}
}

// One source for every subset test: the FK graph in app, partitions in part.
func TestSubset(t *testing.T) {
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}})
	src.Exec(t, "app", subsetTables+subsetFKs+subsetFill)
	check := src.Connect(t, "app")
	t.Run("closure", func(t *testing.T) { testSubsetClosure(t, src, check) })
	t.Run("copy", func(t *testing.T) { testSubsetCopy(t, src, check) })
	t.Run("dump run", func(t *testing.T) { testSubsetDumpRun(t, src, check) })
	t.Run("partitioned", func(t *testing.T) { testSubsetPartitioned(t, src) })
}
