package twinsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// bigSource is a source with two large tables (copied first, in parallel)
// and a small one copied after them.
func bigSource(t *testing.T, rows int) *pgtest.Cluster {
	t.Helper()
	c := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}})
	c.Exec(t, "app", fmt.Sprintf(`
CREATE TABLE big1 (id bigint PRIMARY KEY, payload text);
CREATE TABLE big2 (id bigint PRIMARY KEY, payload text);
CREATE TABLE small (id bigserial PRIMARY KEY, note text);
INSERT INTO big1 SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, %[1]d) i;
INSERT INTO big2 SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, %[1]d) i;
INSERT INTO small (note) SELECT 'note ' || i FROM generate_series(1, 100) i;
ANALYZE;`, rows))
	return c
}

// waitFor polls cond until it holds or the run ends.
func waitFor(t *testing.T, done <-chan error, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) before %s", err, what)
		case <-time.After(time.Millisecond):
		}
	}
}

func TestDumpSyncSnapshotConsistency(t *testing.T) {
	src := bigSource(t, 300000)
	tgtCluster, tgt := newTarget(t)
	d := &dumper{Source: source{URL: src.ConnString("app")}, Parallel: 2, Plan: plan(hashMasker{})}
	var p progress
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background(), tgt, &p) }()

	// Both workers are busy with the big tables (their ctid ranges: each
	// is over the split threshold): the small one is not started yet, and
	// rows committed now are after the snapshot, big1's beyond the pages
	// its ranges were planned from.
	waitFor(t, done, "the big tables were being copied", func() bool {
		st := p.Stats()
		return len(st.Active) > 0 && st.Rows > 0
	})
	src.Exec(t, "app", `INSERT INTO small (note) SELECT 'late ' || i FROM generate_series(1, 50) i;
		INSERT INTO big1 SELECT i, 'late' FROM generate_series(1000001, 1000050) i;
		DELETE FROM big2 WHERE id <= 10;`)
	if st := p.Stats(); st.TablesDone != 0 {
		t.Fatalf("a table finished before the concurrent writes (%+v): make the big tables bigger", st)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for tbl, want := range map[string]int64{"small": 100, "big1": 300000, "big2": 300000} {
		if n := query[int64](t, tgtCluster, "SELECT count(*) FROM "+tbl); n != want {
			t.Errorf("%s: %d rows in the twin, want %d (the snapshot's)", tbl, n, want)
		}
	}
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM small WHERE note LIKE 'late%'"); n != 0 {
		t.Errorf("%d rows inserted after the snapshot reached the twin", n)
	}
	// The small table's sequence is read after the copy: at least the
	// snapshot's value, so the twin's next id never collides.
	if n := query[int64](t, tgtCluster, "SELECT last_value FROM small_id_seq"); n < 100 {
		t.Errorf("small_id_seq = %d, want >= 100", n)
	}
}

func TestDumpSyncSourceStoppedMidCopy(t *testing.T) {
	src := bigSource(t, 300000)
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
	waitFor(t, done, "rows were being copied", func() bool { return p.Stats().Rows > 1000 })
	src.Stop()

	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the run did not end within a minute of the source stopping")
	}
	t.Logf("run error: %v", err)
	var se *stepError
	if !errors.As(err, &se) || se.Step != stepCopy {
		t.Fatalf("Run = %v, want a StepError in step copy", err)
	}
	if !errors.Is(err, errSourceUnreachable) || !strings.Contains(err.Error(), "sync step copy") {
		t.Errorf("error %q does not say the source became unreachable during the copy", err)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("no retry was logged:\n%s", logs)
	}
	// The failed COPYs left nothing committed behind them but whole ctid
	// ranges that had committed before, each once.
	for _, tbl := range []string{"big1", "big2"} {
		n := query[int64](t, tgtCluster, "SELECT count(*) FROM "+tbl)
		if d := query[int64](t, tgtCluster, "SELECT count(DISTINCT id) FROM "+tbl); n == 300000 || d != n {
			t.Errorf("%s: %d rows (%d distinct) committed in the twin by a failed copy", tbl, n, d)
		}
	}
}

func TestDumpSyncUnreachableSourceBacksOff(t *testing.T) {
	_, tgt := newTarget(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now

	log, logs := testLogger(t)
	d := &dumper{
		Source:  source{URL: fmt.Sprintf("postgres://postgres:hunter2@127.0.0.1:%d/app?sslmode=disable&connect_timeout=2", port)},
		Plan:    plan(hashMasker{}),
		Backoff: backoff{Initial: 20 * time.Millisecond, Max: 40 * time.Millisecond, Attempts: 4},
		Log:     log,
	}
	start := time.Now()
	err = d.Run(context.Background(), tgt, nil)
	el := time.Since(start)
	var se *stepError
	if !errors.As(err, &se) || se.Step != stepConnect || !errors.Is(err, errSourceUnreachable) {
		t.Fatalf("Run = %v, want source unreachable in step connect", err)
	}
	if !strings.Contains(err.Error(), "after 4 attempts") {
		t.Errorf("error %q does not say how often it tried", err)
	}
	if n := strings.Count(logs.String(), "connect to source failed, retrying"); n != 3 {
		t.Errorf("%d retries logged, want 3 (4 attempts):\n%s", n, logs)
	}
	if el < 20*time.Millisecond+40*time.Millisecond+40*time.Millisecond {
		t.Errorf("4 attempts took %v: the backoff waits (20ms, 40ms, 40ms) were not observed", el)
	}
	if strings.Contains(err.Error()+logs.String(), "hunter2") {
		t.Error("the password appears in the error or the log")
	}
}

func TestDumpSyncDoesNotRetryAuthOrMissingDatabase(t *testing.T) {
	src := pgtest.Start(t, pgtest.Options{})
	_, tgt := newTarget(t)
	log, logs := testLogger(t)
	d := &dumper{
		Source:  source{URL: src.ConnString("no_such_db")},
		Plan:    plan(hashMasker{}),
		Backoff: backoff{Initial: 10 * time.Millisecond, Attempts: 5},
		Log:     log,
	}
	err := d.Run(context.Background(), tgt, nil)
	if err == nil || errors.Is(err, errSourceUnreachable) || !strings.Contains(err.Error(), "no_such_db") {
		t.Fatalf("Run = %v, want an immediate error naming the missing database", err)
	}
	if strings.Contains(logs.String(), "retrying") {
		t.Errorf("a missing database was retried:\n%s", logs)
	}
}

func TestSourcePasswordFileAndToolConn(t *testing.T) {
	dir := t.TempDir()
	pwFile := dir + "/pw"
	if err := os.WriteFile(pwFile, []byte("s3cret:with:colons\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := source{URL: "postgres://rep:inurl@db.example:5432/app?sslmode=require&password=q", PasswordFile: pwFile}
	cfg, err := s.connConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Password != "s3cret:with:colons" {
		t.Errorf("password = %q, want the password file's first line", cfg.Password)
	}
	conn, env, err := s.toolConn()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(conn, "inurl") || strings.Contains(conn, "password") {
		t.Errorf("pg_dump connection string %q still carries a password", conn)
	}
	if env[len(env)-1] != "PGPASSWORD=s3cret:with:colons" {
		t.Errorf("pg_dump env ends %q, want PGPASSWORD from the file", env[len(env)-1])
	}
	if db, _ := s.Database(); db != "app" {
		t.Errorf("Database = %q, want app", db)
	}
	if db, _ := (source{URL: "host=x user=rep"}).Database(); db != "rep" {
		t.Errorf("Database without dbname = %q, want the user name as libpq defaults it", db)
	}
}

func TestCheckDumpVersion(t *testing.T) {
	bin, err := findBinDir()
	if err != nil {
		t.Fatal(err)
	}
	local, err := toolMajor(context.Background(), bin+"/pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkDumpVersion(context.Background(), bin, local*10000+5); err != nil {
		t.Errorf("same major: %v", err)
	}
	err = checkDumpVersion(context.Background(), bin, (local+2)*10000)
	want := fmt.Sprintf("postgresql-client-%d", local+2)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("newer source: %v, want an error saying to install %s", err, want)
	}
}

func TestSelection(t *testing.T) {
	s := selection{IncludeSchemas: []string{"public", "sales"}, ExcludeTables: []string{"public.audit_*", "tmp", "sales.big"}}
	for _, c := range []struct {
		schema, table string
		want          bool
	}{
		{"public", "users", true},
		{"public", "audit_log", false},
		{"sales", "tmp", false},
		{"public", "tmp", false},
		{"sales", "big", false},
		{"public", "big", true},
		{"other", "users", false},
	} {
		if got := s.Includes(c.schema, c.table); got != c.want {
			t.Errorf("Includes(%s, %s) = %v, want %v", c.schema, c.table, got, c.want)
		}
	}
	if !(selection{}).Includes("anything", "at_all") {
		t.Error("the empty selection must include everything")
	}
}

func TestParseTOC(t *testing.T) {
	for line, want := range map[string]tocEntry{
		"2; 3079 16385 EXTENSION - citext ":                                             {desc: "EXTENSION", tag: "citext"},
		"3390; 0 0 COMMENT - EXTENSION citext ":                                         {desc: "COMMENT", tag: "EXTENSION citext"},
		"6; 2615 16400 SCHEMA - audit postgres":                                         {desc: "SCHEMA", tag: "audit"},
		"215; 1259 16386 TABLE public customers postgres":                               {desc: "TABLE", tag: "customers"},
		"3201; 3079 16500 EVENT TRIGGER - no_drops postgres":                            {desc: "EVENT TRIGGER", tag: "no_drops"},
		"3300; 2606 16600 FK CONSTRAINT public orders orders_customer_id_fkey postgres": {desc: "FK CONSTRAINT", tag: "orders orders_customer_id_fkey"},
	} {
		got, ok := parseTOC(line)
		if !ok || got.desc != want.desc || got.tag != want.tag {
			t.Errorf("parseTOC(%q) = %q/%q, want %q/%q", line, got.desc, got.tag, want.desc, want.tag)
		}
	}
	if _, ok := parseTOC(";     Dumped from database version 15.18"); ok {
		t.Error("a comment line parsed as an entry")
	}
}

// Many tiny tables and more workers than the first ones need: a worker that
// connects late finds the queue empty or joins before the snapshot goes.
func TestDumpSyncManySmallTables(t *testing.T) {
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}})
	var ddl strings.Builder
	for i := range 40 {
		fmt.Fprintf(&ddl, "CREATE TABLE t%02d (id int PRIMARY KEY, v text); INSERT INTO t%02d VALUES (1, 'x');\n", i, i)
	}
	src.Exec(t, "app", ddl.String())
	for range 3 {
		tgtCluster, tgt := newTarget(t)
		d := &dumper{Source: source{URL: src.ConnString("app")}, Parallel: 8, Plan: plan(hashMasker{})}
		var p progress
		if err := d.Run(context.Background(), tgt, &p); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if st := p.Stats(); st.TablesDone != 40 || st.Rows != 40 {
			t.Fatalf("progress %+v, want 40 tables and rows", st)
		}
		if n := query[int64](t, tgtCluster, "SELECT count(*) FROM t39"); n != 1 {
			t.Fatalf("t39 has %d rows", n)
		}
	}
}
