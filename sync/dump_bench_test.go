package twinsync

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// TestBenchDumpSync compares, in one run on one machine, the masked dump
// sync with pg_dump -Fd -j 4 + pg_restore -j 4 (no masking) of the same
// source into the same kind of fresh cluster. PGTWIN_BENCH=1 runs it;
// PGTWIN_BENCH_CUSTOMERS scales it (default 1,500,000 customers, ~2 GB).
func TestBenchDumpSync(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1")
	}
	n := 1500000
	if v := os.Getenv("PGTWIN_BENCH_CUSTOMERS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	settings := map[string]string{"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}, Settings: settings})
	src.Exec(t, "postgres", "CREATE ROLE app_reader NOLOGIN")
	src.Exec(t, "app", demoSchema)
	start := time.Now()
	src.Exec(t, "app", fmt.Sprintf(`
INSERT INTO customers (email, full_name, phone, profile, tags, mood)
SELECT 'user' || i || '@example.com', 'Firstname' || (i %% 997) || ' Lastname' || i,
	'+1 555 ' || lpad(i::text, 7, '0'),
	jsonb_build_object('dob', '1950-01-01'::date + (i %% 20000), 'newsletter', i %% 2 = 0, 'score', i %% 100),
	ARRAY['tag' || (i %% 10), 'tag' || (i %% 7)], (ARRAY['happy', 'sad', 'meh'])[1 + i %% 3]::mood
FROM generate_series(1, %[1]d) i;
INSERT INTO addresses (customer_id, street, city, postcode)
SELECT 1 + i %% %[1]d, (i %% 9999) || ' Main Street', 'City ' || i %% 500, lpad((i %% 99999)::text, 5, '0') FROM generate_series(1, %[1]d * 3 / 2) i;
INSERT INTO orders (customer_id, total, ratio, placed_at, status)
SELECT 1 + i %% %[1]d, (i %% 100000 * 0.37)::numeric(12,2), 1.0 / (i + 3), '2020-01-01'::timestamptz + i * interval '7 seconds', (ARRAY['paid', 'shipped', 'refunded'])[1 + i %% 3]
FROM generate_series(1, %[1]d * 3) i;
INSERT INTO payments (order_id, card_number, amount, meta)
SELECT i, '4111 1111 ' || lpad((i %% 100000000)::text, 8, '0'), (i %% 100000 * 0.37)::numeric(12,2), '{"via": "card", "3ds": true}'
FROM generate_series(1, %[1]d * 3) i;`, n))
	src.Exec(t, "app", "VACUUM ANALYZE")
	var size int64
	if err := src.Connect(t, "app").QueryRow(ctx, "SELECT pg_database_size('app')").Scan(&size); err != nil {
		t.Fatal(err)
	}
	t.Logf("source: %d customers, database %.2f GB, generated in %v", n, float64(size)/(1<<30), time.Since(start).Round(time.Second))
	// Warm the OS cache so neither contender pays the first read.
	src.Exec(t, "app", "SELECT count(*) FROM customers; SELECT count(*) FROM addresses; SELECT count(*) FROM orders; SELECT count(*) FROM payments")

	// (a) pgtwin dump sync with masking.
	tgtA := pgtest.Start(t, pgtest.Options{Settings: settings})
	tgtA.Exec(t, "postgres", "CREATE ROLE pgtwin_owner NOLOGIN")
	tgtA.Exec(t, "postgres", "CREATE DATABASE app OWNER pgtwin_owner")
	rules, err := anonymize.ParseRules(map[string]map[string]any{
		"public.customers.email":      {"transform": "email"},
		"public.customers.full_name":  {"transform": "name"},
		"public.customers.phone":      {"transform": "phone"},
		"public.customers.profile":    {"transform": "json", "paths": map[string]any{"dob": map[string]any{"transform": "date"}}},
		"public.addresses.street":     {"transform": "address"},
		"public.addresses.city":       {"transform": "address", "part": "city"},
		"public.addresses.postcode":   {"transform": "address", "part": "postcode"},
		"public.payments.card_number": {"transform": "partial", "keep_last": 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	d := &dumper{
		Source:   source{URL: src.ConnString("app")},
		Parallel: 4,
		Plan:     anonymizePlan(rules, anonymize.PolicyMask, key, selection{}),
		Log:      zerolog.New(os.Stderr).Level(zerolog.InfoLevel),
	}
	var p progress
	startA := time.Now()
	if err := d.Run(ctx, target{ConnString: tgtA.ConnString("app"), BinDir: tgtA.Bin}, &p); err != nil {
		t.Fatalf("dump sync: %v", err)
	}
	durA := time.Since(startA)
	st := p.Stats()
	steps := map[string]time.Time{}
	for _, s := range st.Steps {
		steps[s.Step] = s.Start
	}

	// (b) pg_dump -Fd -j 4 + pg_restore -j 4, no masking.
	tgtB := pgtest.Start(t, pgtest.Options{Settings: settings})
	tgtB.Exec(t, "postgres", "CREATE ROLE app_reader NOLOGIN") // pg_restore does not create the policy's role
	tgtB.Exec(t, "postgres", "CREATE DATABASE app")
	dumpDir := filepath.Join(t.TempDir(), "dump")
	startB := time.Now()
	runCmd(t, filepath.Join(src.Bin, "pg_dump"), "-Fd", "-j", "4", "-f", dumpDir, "--no-owner", "--no-privileges", "-d", src.ConnString("app"))
	dumped := time.Since(startB)
	runCmd(t, filepath.Join(src.Bin, "pg_restore"), "-j", "4", "--no-owner", "--no-privileges", "-d", tgtB.ConnString("app"), dumpDir)
	durB := time.Since(startB)

	for _, tbl := range []string{"customers", "addresses", "orders", "payments"} {
		a, b := query[int64](t, tgtA, "SELECT count(*) FROM "+tbl), query[int64](t, tgtB, "SELECT count(*) FROM "+tbl)
		if a != b || a == 0 {
			t.Errorf("%s: pgtwin %d rows, baseline %d", tbl, a, b)
		}
	}
	phase := func(from, to string) time.Duration {
		if steps[from].IsZero() || steps[to].IsZero() {
			return 0
		}
		return steps[to].Sub(steps[from]).Round(10 * time.Millisecond)
	}
	fmt.Printf("source database: %.2f GB (%d customers, %d rows copied, %.2f GB of COPY text)\n",
		float64(size)/(1<<30), n, st.Rows, float64(st.Bytes)/(1<<30))
	fmt.Printf("pgtwin dump sync, masked, parallel 4:   %v  (connect %v, plan %v, schema %v, copy %v, post-data %v, sequences %v, analyze %v)\n",
		durA.Round(10*time.Millisecond), phase(stepConnect, stepPlan), phase(stepPlan, stepSchema), phase(stepSchema, stepCopy),
		phase(stepCopy, stepPostData), phase(stepPostData, stepSequences), phase(stepSequences, stepAnalyze), phase(stepAnalyze, stepDone))
	fmt.Printf("pg_dump -Fd -j 4 + pg_restore -j 4:     %v  (dump %v, restore %v)\n",
		durB.Round(10*time.Millisecond), dumped.Round(10*time.Millisecond), (durB - dumped).Round(10*time.Millisecond))
	fmt.Printf("ratio pgtwin / baseline: %.2f\n", durA.Seconds()/durB.Seconds())
}

func runCmd(t *testing.T, argv ...string) {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
}
