package twinsync

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// withSplitPages sets the split threshold for one test.
func withSplitPages(t *testing.T, pages int64) {
	old := splitPages
	splitPages = pages
	t.Cleanup(func() { splitPages = old })
}

func TestCopySplitPlan(t *testing.T) {
	withSplitPages(t, 100)
	calls := 0
	mk := func(name string, pages int64) *table {
		tb := &table{schema: "public", name: name, pages: pages, qname: "public." + name, columns: []string{"id", "v"},
			masker: hashRows{masked: []bool{false, true}}}
		tb.remask = func() (rowMasker, error) { calls++; return hashRows{masked: []bool{false, true}}, nil }
		return tb
	}
	big, mid, small := mk("big", 1000), mk("mid", 150), mk("small", 99)
	r := &run{parallel: 3, srcVersion: 150004}
	planned, err := r.planJobs([]*table{big, mid, small})
	if err != nil {
		t.Fatal(err)
	}
	// Two ranges a worker, none under half the threshold; the ranges tile
	// the table and the last one is open.
	if big.parts != 6 || mid.parts != 3 || small.parts != 1 || calls != 5+2 {
		t.Fatalf("parts %d/%d/%d, %d extra maskers; want 6/3/1 and 7", big.parts, mid.parts, small.parts, calls)
	}
	want := []string{
		`COPY (SELECT "id", "v" FROM ONLY public.mid WHERE ctid >= '(0,0)'::pg_catalog.tid AND ctid < '(50,0)'::pg_catalog.tid) TO STDOUT`,
		`COPY (SELECT "id", "v" FROM ONLY public.mid WHERE ctid >= '(50,0)'::pg_catalog.tid AND ctid < '(100,0)'::pg_catalog.tid) TO STDOUT`,
		`COPY (SELECT "id", "v" FROM ONLY public.mid WHERE ctid >= '(100,0)'::pg_catalog.tid) TO STDOUT`,
	}
	for i, j := range planned[1].jobs {
		if got := j.copyOut(); got != want[i] {
			t.Errorf("mid part %d: %s\nwant %s", i, got, want[i])
		}
	}
	if got := planned[2].jobs[0].copyOut(); got != `COPY public.small ("id", "v") TO STDOUT` {
		t.Errorf("whole table: %s", got)
	}
	if strings.Contains(planned[0].jobs[0].copyIn(), "FREEZE") || !strings.Contains(planned[2].jobs[0].copyIn(), "FREEZE") {
		t.Errorf("parts share the table and cannot FREEZE, a whole table can: %q, %q", planned[0].jobs[0].copyIn(), planned[2].jobs[0].copyIn())
	}
	// Each table gets a worker of its own, largest first; a worker with no
	// table left to start helps the one with most ranges left, from its end.
	s := newCopyScheduler(planned)
	var homes [3]*tableJobs
	take := func(w int) string {
		j, h := s.next(homes[w])
		homes[w] = h
		if j == nil {
			return "-"
		}
		return fmt.Sprintf("%s%d", j.t.name, j.part)
	}
	var got []string
	for _, w := range []int{0, 1, 2, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1} {
		got = append(got, take(w))
	}
	if g, w := strings.Join(got, " "), "big0 mid0 small0 mid1 big5 big4 mid2 big3 big1 big2 - - -"; g != w {
		t.Errorf("jobs handed out %s\nwant          %s", g, w)
	}
	if s.total != 10 {
		t.Errorf("total %d jobs, want 10", s.total)
	}

	// No split: one worker, a source without TID Range Scans (12, 13), or a
	// table below the threshold.
	for _, r := range []*run{{parallel: 1, srcVersion: 150004}, {parallel: 4, srcVersion: 130011}} {
		planned, err := r.planJobs([]*table{big})
		if err != nil || len(planned[0].jobs) != 1 || planned[0].jobs[0].split() {
			t.Errorf("parallel %d, source %d: %v, want the table whole", r.parallel, r.srcVersion, err)
		}
	}
}

// splitSource has a table well over the (lowered) split threshold whose
// relpages is stale: rows appended after ANALYZE lie beyond the last page
// the split knows of.
func splitSource(t *testing.T) *pgtest.Cluster {
	t.Helper()
	c := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}})
	c.Exec(t, "app", `
CREATE TABLE customers (id bigint PRIMARY KEY, email text, note text, blob text);
CREATE TABLE small (id int PRIMARY KEY);
INSERT INTO customers SELECT i, 'user' || i || '@example.com', CASE WHEN i % 7 = 0 THEN NULL ELSE 'n' || i END,
	CASE WHEN i % 1000 = 0 THEN repeat(md5(i::text), 300) END FROM generate_series(1, 20000) i;
INSERT INTO small VALUES (1);
ANALYZE;
INSERT INTO customers SELECT i, 'late' || i || '@example.com', 'late', NULL FROM generate_series(20001, 26000) i;`)
	return c
}

var splitMasks = hashMasker{"public.customers": {"email"}}

// rowsDigest is the md5 of the table's rows in id order.
func rowsDigest(t *testing.T, c *pgtest.Cluster, cols string) string {
	t.Helper()
	return query[string](t, c, "SELECT md5(string_agg(("+cols+")::text, ',' ORDER BY id)) FROM customers")
}

func TestCopySplitTable(t *testing.T) {
	src := splitSource(t)
	pages := query[int64](t, src, "SELECT relpages FROM pg_class WHERE relname = 'customers'")
	actual := query[int64](t, src, "SELECT pg_relation_size('customers') / 8192")
	if pages < 16 || actual <= pages {
		t.Fatalf("relpages %d, actual %d pages: the source needs a table of 16+ pages that grew after ANALYZE", pages, actual)
	}
	withSplitPages(t, 8)
	explain := query[string](t, src, fmt.Sprintf("EXPLAIN SELECT id FROM ONLY customers WHERE ctid >= '(%d,0)'::tid AND ctid < '(%d,0)'::tid", pages/3, 2*pages/3))
	if !strings.Contains(explain, "Tid Range Scan") {
		t.Errorf("a part's SELECT is planned as %q, want a Tid Range Scan", explain)
	}

	run := func(split int64) (*pgtest.Cluster, string) {
		withSplitPages(t, split)
		tgtCluster, tgt := newTarget(t)
		log, logs := testLogger(t)
		d := &dumper{Source: source{URL: src.ConnString("app")}, Parallel: 3, Plan: plan(splitMasks), Log: log}
		var p progress
		if err := d.Run(context.Background(), tgt, &p); err != nil {
			t.Fatalf("Run (split at %d pages): %v", split, err)
		}
		if st := p.Stats(); st.TablesDone != 2 || st.Rows != 26001 || len(st.Active) != 0 {
			t.Errorf("split at %d pages: progress %+v, want 2 tables and 26001 rows done, none active", split, st)
		}
		return tgtCluster, logs.String()
	}
	split, splitLogs := run(8)
	logs := splitLogs
	if n := strings.Count(logs, `"message":"table part copied"`); n != 6 {
		t.Errorf("%d parts copied, want 6 (two for each of 3 workers):\n%s", n, logs)
	}
	if n := strings.Count(logs, `"table":"public.customers","rows":26000`); n != 1 {
		t.Errorf("the table was reported copied %d times with all 26000 rows, want once:\n%s", n, logs)
	}
	if n := strings.Count(logs, `"message":"split table frozen"`); n != 1 || strings.Contains(logs, "not wholly frozen") {
		t.Errorf("the split table was frozen %d times, want once and wholly:\n%s", n, logs)
	}
	whole, logs := run(1 << 40)
	if strings.Contains(logs, "table part copied") {
		t.Errorf("copied in parts above the threshold:\n%s", logs)
	}

	if got, want := query[int64](t, split, "SELECT count(*) FROM customers"), int64(26000); got != want {
		t.Errorf("split copy has %d rows, want %d", got, want)
	}
	if got, want := rowsDigest(t, split, "id, note, blob"), rowsDigest(t, src, "id, note, blob"); got != want {
		t.Errorf("unmasked columns differ from the source after a split copy (md5 %s, source %s)", got, want)
	}
	if got, want := rowsDigest(t, split, "id, email"), rowsDigest(t, whole, "id, email"); got != want {
		t.Errorf("masked column differs between the split and the whole copy (md5 %s vs %s)", got, want)
	}
	if n := query[int64](t, split, "SELECT count(*) FROM customers WHERE email LIKE '%@example.com'"); n != 0 {
		t.Errorf("%d source emails reached the twin unmasked", n)
	}
	// The parts could not COPY FREEZE; the fill froze the table after.
	split.Exec(t, "app", "CREATE EXTENSION pg_visibility")
	if n := query[int64](t, split, "SELECT count(*) FROM pg_visibility_map('customers') WHERE NOT all_frozen"); n != 0 {
		t.Errorf("%d pages of the split table are not all-frozen:\n%s", n, splitLogs)
	}
}

// A part whose source backend dies mid-copy is copied again into the same
// snapshot; the other parts committed once and are not run again.
func TestCopySplitPartRetry(t *testing.T) {
	withSplitPages(t, 4096)
	src := bigSource(t, 300000) // two tables of ~50 MB: two parts each at 32 MB
	tgtCluster, tgt := newTarget(t)
	log, logs := testLogger(t)
	d := &dumper{
		Source:   source{URL: src.ConnString("app")},
		Parallel: 2,
		Plan:     plan(hashMasker{}),
		Backoff:  backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, Attempts: 3},
		Log:      log,
	}
	var p progress
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background(), tgt, &p) }()

	conn := src.Connect(t, "app")
	var killed bool
	waitFor(t, done, "the first part of big1 was being copied", func() bool {
		if p.Stats().Rows < 1000 {
			return false
		}
		err := conn.QueryRow(context.Background(), `SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity
			WHERE query LIKE 'COPY (SELECT % FROM ONLY "public"."big1" WHERE ctid >= ''(0,0)''%' AND pid <> pg_backend_pid()`).Scan(&killed)
		if err != nil {
			t.Fatal(err)
		}
		return killed
	})
	if err := <-done; err != nil {
		t.Fatalf("Run after a part's source backend was killed: %v", err)
	}
	if !strings.Contains(logs.String(), "retrying") || !strings.Contains(logs.String(), `"part":1`) {
		t.Errorf("no retry of part 1 was logged:\n%s", logs)
	}
	for _, tbl := range []string{"big1", "big2"} {
		n := query[int64](t, tgtCluster, "SELECT count(*) FROM "+tbl)
		distinct := query[int64](t, tgtCluster, "SELECT count(DISTINCT id) FROM "+tbl)
		if n != 300000 || distinct != n {
			t.Errorf("%s: %d rows (%d distinct ids) in the twin, want 300000 once each", tbl, n, distinct)
		}
	}
	if st := p.Stats(); st.Rows != 600100 || st.TablesDone != 3 {
		t.Errorf("progress %+v, want 600100 rows in 3 tables: a retried part's first attempt must be taken back", st)
	}
}
