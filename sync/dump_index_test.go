package twinsync

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseTOCRef(t *testing.T) {
	for _, c := range []struct {
		line string
		want tocRef
		ok   bool
	}{
		{"3350; 1259 16420 INDEX public customers_email postgres", tocRef{3350, 1259, 16420}, true},
		{"3338; 2606 16415 CONSTRAINT public customers customers_pkey postgres", tocRef{3338, 2606, 16415}, true},
		{"3360; 2606 16430 FK CONSTRAINT public orders orders_customer_id_fkey postgres", tocRef{3360, 2606, 16430}, true},
		{"; Archive created at 2026-12-01 11:40:00 UTC", tocRef{}, false},
		{"", tocRef{}, false},
		{"x; 1 2 TABLE", tocRef{}, false},
	} {
		got, ok := parseTOCRef(c.line)
		if ok != c.ok || got != c.want {
			t.Errorf("parseTOCRef(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

func TestMaintenanceSizing(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		avail    int64
		parallel int
		want     int64
	}{
		{0, 4, 256 * mb},                  // unknown
		{22 << 30, 2, 1408 * mb},          // this project's CI host
		{22 << 30, 4, 352 * mb},           // more builds at once, less each
		{1 << 30, 4, 64 * mb},             // floor
		{256 << 30, 1, 2 << 30},           // ceiling
		{8 << 30, 0, 2 << 30 /* p = 1 */}, // parallel unset
	} {
		if got := maintenanceMem(c.avail, c.parallel); got != c.want {
			t.Errorf("maintenanceMem(%d, %d) = %d MB, want %d MB", c.avail, c.parallel, got/mb, c.want/mb)
		}
	}
	for cpus, want := range map[int]int{1: 0, 2: 1, 4: 3, 16: 4} {
		if got := maintenanceWorkers(cpus); got != want {
			t.Errorf("maintenanceWorkers(%d) = %d, want %d", cpus, got, want)
		}
	}
	if memAvailable() <= 0 {
		t.Errorf("MemAvailable not read from /proc/meminfo")
	}
}

// TestDumpSyncEarlyIndexes takes every table's indexes early (threshold 0)
// on a schema with what post-data ordering is about — partitioned primary
// keys and indexes with their ATTACH entries, inheritance, exclusion and
// unique constraints, self-referencing and deferrable foreign keys, a
// clustered index, an expression index — and checks the twin ends up with
// exactly the source's indexes and constraints, analyzed.
func TestDumpSyncEarlyIndexes(t *testing.T) {
	old := earlyIndexPages
	earlyIndexPages = 0
	t.Cleanup(func() { earlyIndexPages = old })
	ctx := context.Background()
	src := newSource(t, 300)
	src.Exec(t, "app", `
CREATE TABLE readings (site int NOT NULL, at date NOT NULL, v numeric, PRIMARY KEY (site, at)) PARTITION BY RANGE (at);
CREATE TABLE readings_2024 PARTITION OF readings FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE readings_2025 PARTITION OF readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX readings_v ON readings (v);
INSERT INTO readings SELECT i % 7, '2024-01-01'::date + i, i FROM generate_series(0, 600) i;
CREATE TABLE bookings (id int PRIMARY KEY, room int NOT NULL, during tsrange NOT NULL, code text UNIQUE,
	parent int REFERENCES bookings DEFERRABLE INITIALLY DEFERRED,
	EXCLUDE USING gist (during WITH &&));
INSERT INTO bookings SELECT i, i % 5, tsrange('2024-01-01'::timestamp + i * interval '1 day', '2024-01-01'::timestamp + (i + 1) * interval '1 day'),
	'c' || i, nullif(i - 1, 0) FROM generate_series(1, 200) i;`)
	src.Exec(t, "app", `
CREATE INDEX bookings_lower_code ON bookings (lower(code));
CLUSTER bookings USING bookings_pkey;
CREATE INDEX notes_body ON notes (body);
ANALYZE;`)
	tgtCluster, tgt := newTarget(t)
	log, logs := testLogger(t)
	d := &dumper{
		Source:   source{URL: src.ConnString("app")},
		Parallel: 3,
		Plan:     plan(demoMasks),
		Backoff:  backoff{Initial: 10 * time.Millisecond, Attempts: 3},
		Log:      log,
	}
	if err := d.Run(ctx, tgt, nil); err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, logs)
	}
	if !strings.Contains(logs.String(), "indexes built and tables analyzed while others copy") {
		t.Errorf("no table's indexes were built early; log:\n%s", logs)
	}
	for _, q := range []string{
		`SELECT string_agg(schemaname || '.' || indexname || ': ' || indexdef, E'\n' ORDER BY schemaname, indexname) FROM pg_indexes
			WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
		`SELECT string_agg(c.conrelid::regclass || ' ' || c.conname || ': ' || pg_get_constraintdef(c.oid) || ' ' || c.convalidated || c.condeferrable,
			E'\n' ORDER BY c.conrelid::regclass::text, c.conname) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
			WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`,
		`SELECT string_agg(i.indexrelid::regclass::text, ',' ORDER BY i.indexrelid::regclass::text) FROM pg_index i WHERE i.indisclustered`,
		`SELECT string_agg(i.indexrelid::regclass::text || '>' || p.inhparent::regclass::text, ',' ORDER BY i.indexrelid::regclass::text)
			FROM pg_index i JOIN pg_inherits p ON p.inhrelid = i.indexrelid`,
	} {
		s, g := query[string](t, src, q), query[string](t, tgtCluster, q)
		if s != g || s == "" {
			t.Errorf("%s\nsource:\n%s\ntwin:\n%s", q, s, g)
		}
	}
	// Every table with rows has statistics, the early ones included.
	if n := query[int64](t, tgtCluster, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname = 'public' AND c.reltuples > 0
			AND NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname)`); n != 0 {
		t.Errorf("%d tables with rows have no statistics", n)
	}
	if got := query[int64](t, tgtCluster, "SELECT count(*) FROM bookings WHERE parent IS NOT NULL"); got != 199 {
		t.Errorf("bookings with a parent: %d, want 199", got)
	}
}
