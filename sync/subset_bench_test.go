package twinsync

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// TestBenchSubsetSync compares, in one run, a full masked dump sync with a
// subset sync of the last ~5% of orders (their line items and payments, the
// customers and products they reference): time and twin size.
// PGTWIN_BENCH=1 runs it; PGTWIN_BENCH_ORDERS orders (default 4,000,000,
// about 2 GB with indexes), 3 line items and half a payment each.
func TestBenchSubsetSync(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1")
	}
	ctx := context.Background()
	orders := 4000000
	if v, err := strconv.Atoi(os.Getenv("PGTWIN_BENCH_ORDERS")); err == nil && v > 0 {
		orders = v
	}
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"app"},
		Settings: map[string]string{"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}})
	start := time.Now()
	src.Exec(t, "app", fmt.Sprintf(`
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, full_name text);
CREATE TABLE products (id int PRIMARY KEY, name text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, created_at timestamptz NOT NULL, note text);
CREATE TABLE line_items (order_id int, line int, product_id int NOT NULL, qty int, PRIMARY KEY (order_id, line));
CREATE TABLE payments (id int PRIMARY KEY, order_id int NOT NULL, card_number text);
INSERT INTO customers SELECT i, 'user' || i || '@example.com', 'Name ' || i FROM generate_series(1, %[1]d / 10) i;
INSERT INTO products SELECT i, 'product ' || i FROM generate_series(1, 10000) i;
INSERT INTO orders SELECT i, (i * 7) %% (%[1]d / 10) + 1, '2024-01-01 00:00+00'::timestamptz + i * interval '1 second' * (86400000.0 / %[1]d), repeat('n', 40) FROM generate_series(1, %[1]d) i;
INSERT INTO line_items SELECT o, l, (o * 3 + l) %% 10000 + 1, l FROM generate_series(1, %[1]d) o, generate_series(1, 3) l;
INSERT INTO payments SELECT i, i, '4111-0000-0000-' || lpad((i %% 10000)::text, 4, '0') FROM generate_series(2, %[1]d, 2) i;
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers;
ALTER TABLE line_items ADD CONSTRAINT line_items_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders;
ALTER TABLE line_items ADD CONSTRAINT line_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES products;
ALTER TABLE payments ADD CONSTRAINT payments_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders;
CREATE INDEX ON line_items (product_id);
CREATE INDEX ON payments (order_id);
CREATE INDEX ON orders (customer_id);
CREATE INDEX ON orders (created_at);`, orders))
	src.Exec(t, "app", "VACUUM ANALYZE")
	var srcSize int64
	src.Connect(t, "app").QueryRow(ctx, "SELECT pg_database_size('app')").Scan(&srcSize)
	t.Logf("source: %d orders, %d MB, generated in %v", orders, srcSize>>20, time.Since(start).Round(time.Second))

	tc, _ := newTarget(t)
	log, logs := testLogger(t)
	// Orders span 1000 days: the last 50 are 5%.
	const filter = "created_at > '2024-01-01 00:00+00'::timestamptz + interval '950 days'"
	masks := hashMasker{"public.customers": {"email", "full_name"}, "public.payments": {"card_number"}}
	for round, kind := range []string{"full", "subset", "subset", "full"} {
		db := fmt.Sprintf("twin%d", round)
		tc.Exec(t, "postgres", "CREATE DATABASE "+db+" OWNER pgtwin_owner")
		sel := selection{}
		if kind == "subset" {
			spec, err := subsetFromConfig(map[string]string{"public.orders": filter},
				[]string{"public.orders.orders_customer_id_fkey", "public.line_items.line_items_product_id_fkey"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sel.Subset = spec
		}
		d := &dumper{Source: source{URL: src.ConnString("app")}, Parallel: 2, Selection: sel, Plan: plan(masks),
			Backoff: backoff{Initial: 10 * time.Millisecond, Attempts: 2}, Log: log}
		var p progress
		began := time.Now()
		if err := d.Run(ctx, target{ConnString: tc.ConnString(db), BinDir: tc.Bin}, &p); err != nil {
			t.Fatalf("%s: %v\n%s", kind, err, logs)
		}
		took := time.Since(began)
		var size, n int64
		twin := tc.Connect(t, db)
		twin.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&size)
		twin.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n)
		load, _ := os.ReadFile("/proc/loadavg")
		fmt.Printf("  %-7s sync %7.1fs  twin %6d MB  orders %d  rows %d  load %.14s\n", kind, took.Seconds(), size>>20, n, p.Stats().Rows, load)
		tc.Exec(t, "postgres", "DROP DATABASE "+db+" WITH (FORCE)")
	}
}
