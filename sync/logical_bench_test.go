package twinsync

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

const benchScript = `\set aid random(1, 100000 * :scale)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
INSERT INTO bench_events (aid, email, delta) VALUES (:aid, 'user' || :aid || '@example.com', :delta);
END;
`

const benchSchema = `
ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
CREATE TABLE bench_events (id bigserial PRIMARY KEY, aid int NOT NULL, email text NOT NULL, delta int, at timestamptz DEFAULT now());
CREATE TABLE bench_marker (id int PRIMARY KEY);
CREATE TABLE bench_probe (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
`

// TestBenchLogical compares, in one run on one machine, pgtwin's masked
// logical follower with PostgreSQL's native logical replication
// (CREATE SUBSCRIPTION, no masking) of the same pgbench-like writes:
// sustained apply rate draining the same backlog, and replication lag at a
// fixed offered load. PGTWIN_BENCH=1 runs it; PGTWIN_BENCH_FSYNC=1 runs the
// clusters with fsync on.
func TestBenchLogical(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1")
	}
	ctx := context.Background()
	settings := map[string]string{"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}
	if os.Getenv("PGTWIN_BENCH_FSYNC") == "1" {
		// Durable commits cost what they cost on a real server (test
		// clusters run with fsync off).
		settings["fsync"] = "on"
	}
	src := pgtest.Start(t, pgtest.Options{Logical: true, Databases: []string{"app"}, Settings: settings})
	pgbench(t, src, "-i", "-s", "10", "-q")
	src.Exec(t, "app", benchSchema)
	script := filepath.Join(t.TempDir(), "bench.sql")
	if err := os.WriteFile(script, []byte(benchScript), 0o644); err != nil {
		t.Fatal(err)
	}

	// (a) pgtwin into a twin, masking bench_events.email.
	twin := pgtest.Start(t, pgtest.Options{Settings: settings})
	twin.Exec(t, "postgres", "CREATE ROLE pgtwin_owner NOLOGIN")
	twin.Exec(t, "postgres", "CREATE DATABASE app OWNER pgtwin_owner")
	rules, err := anonymize.ParseRules(map[string]map[string]any{"public.bench_events.email": {"transform": "email"}})
	if err != nil {
		t.Fatal(err)
	}
	spill := t.TempDir()
	f := &follower{
		Source:     source{URL: src.ConnString("app")},
		Plan:       anonymizePlan(rules, anonymize.PolicyMask, testKey, selection{}),
		TargetConn: func(context.Context) (string, error) { return twin.ConnString("app"), nil },
		Rebuild: func(ctx context.Context, fill func(context.Context, target) error) error {
			return fill(ctx, target{ConnString: twin.ConnString("app"), BinDir: twin.Bin})
		},
		SpillDir: spill,
		Log:      zerolog.Nop(),
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	waitState(t, f, stateStreaming, 5*time.Minute)

	// (b) native logical replication into a plain cluster.
	native := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}, Settings: settings})
	schema, err := exec.Command(filepath.Join(src.Bin, "pg_dump"), "--schema-only", "-h", "127.0.0.1", "-p", strconv.Itoa(src.Port),
		"-U", "postgres", "app").Output()
	if err != nil {
		t.Fatal(err)
	}
	native.Psql(t, "app", string(schema))
	src.Exec(t, "app", "CREATE PUBLICATION native_pub FOR ALL TABLES")
	native.Exec(t, "app", fmt.Sprintf("CREATE SUBSCRIPTION native_sub CONNECTION 'host=127.0.0.1 port=%d dbname=app user=postgres' PUBLICATION native_pub", src.Port))
	waitRow(t, native, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'", 0, 5*time.Minute)

	// Sustained apply rate: the same backlog, written while both consumers
	// are stopped, drained by each alone; rounds alternate who goes first.
	rounds := 3
	if v := os.Getenv("PGTWIN_BENCH_ROUNDS"); v != "" {
		rounds, _ = strconv.Atoi(v)
	}
	var ratios []float64
	for round := range rounds {
		f.Stop()
		native.Exec(t, "app", "ALTER SUBSCRIPTION native_sub DISABLE")
		before := rowChanges(t, src)
		out := pgbench(t, src, "-n", "-c", "4", "-j", "2", "-T", "15", "-f", script)
		src.Exec(t, "app", fmt.Sprintf("INSERT INTO bench_marker VALUES (%d)", round+1))
		rows := rowChanges(t, src) - before
		marker := fmt.Sprintf("SELECT count(*) FROM bench_marker WHERE id = %d", round+1)
		var nativeCPU, twinCPU cpuUse
		drainNative := func() time.Duration {
			start, cpu := time.Now(), sampleCPU(src, native)
			native.Exec(t, "app", "ALTER SUBSCRIPTION native_sub ENABLE")
			waitRow(t, native, marker, 1, 10*time.Minute)
			d := time.Since(start)
			nativeCPU = sampleCPU(src, native).since(cpu)
			return d
		}
		drainTwin := func() time.Duration {
			stop := profileDrain(t, round)
			start, cpu := time.Now(), sampleCPU(src, twin)
			if err := f.Start(ctx); err != nil {
				t.Fatal(err)
			}
			waitRow(t, twin, marker, 1, 10*time.Minute)
			d := time.Since(start)
			stop()
			twinCPU = sampleCPU(src, twin).since(cpu)
			return d
		}
		var nativeDur, twinDur time.Duration
		if round%2 == 0 {
			nativeDur = drainNative()
			native.Exec(t, "app", "ALTER SUBSCRIPTION native_sub DISABLE")
			twinDur = drainTwin()
		} else {
			twinDur = drainTwin()
			f.Stop()
			nativeDur = drainNative()
		}
		nativeRate, twinRate := float64(rows)/nativeDur.Seconds(), float64(rows)/twinDur.Seconds()
		ratios = append(ratios, twinRate/nativeRate)
		t.Logf("round %d: backlog %d row changes (%s); sustained apply: pgtwin %.0f rows/s (%s), native %.0f rows/s (%s), ratio pgtwin/native %.2f",
			round+1, rows, tpsLine(out), twinRate, twinDur.Round(time.Millisecond), nativeRate, nativeDur.Round(time.Millisecond), twinRate/nativeRate)
		t.Logf("round %d: pgtwin %s; native %s", round+1, twinCPU, nativeCPU)
	}
	sort.Float64s(ratios)
	t.Logf("sustained apply ratio pgtwin/native, median of %d rounds: %.2f", rounds, ratios[len(ratios)/2])
	f.Stop() // the last round may have left it running; Start twice is an error
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	native.Exec(t, "app", "ALTER SUBSCRIPTION native_sub ENABLE")

	if os.Getenv("PGTWIN_BENCH_LAG") == "0" {
		return
	}
	// Lag at a fixed offered load, each consumer alone.
	for i, c := range []struct {
		name string
		dst  *pgtest.Cluster
	}{{"pgtwin", twin}, {"native", native}} {
		if c.name == "pgtwin" {
			native.Exec(t, "app", "ALTER SUBSCRIPTION native_sub DISABLE")
		} else {
			f.Stop()
			native.Exec(t, "app", "ALTER SUBSCRIPTION native_sub ENABLE")
			waitRow(t, native, "SELECT count(*) FROM bench_probe", int64(probeCount(t, src)), 10*time.Minute)
		}
		p50, p99, n, tps := lagAtRate(t, src, c.dst, script, 2000, 20*time.Second, (i+1)*100000)
		t.Logf("lag at 2000 tx/s offered (%s achieved), %s: p50 %s, p99 %s (%d probes)", tps, c.name,
			p50.Round(time.Millisecond), p99.Round(time.Millisecond), n)
	}
}

func probeCount(t testing.TB, c *pgtest.Cluster) int {
	return int(query[int64](t.(*testing.T), c, "SELECT count(*) FROM bench_probe"))
}

func tpsLine(pgbenchOut string) string {
	for _, l := range strings.Split(pgbenchOut, "\n") {
		if strings.HasPrefix(l, "tps") {
			return strings.TrimSpace(l)
		}
	}
	return "?"
}

// rowChanges sums inserted, updated and deleted rows of the user tables.
func rowChanges(t testing.TB, c *pgtest.Cluster) int64 {
	t.Helper()
	conn := c.Connect(t, "app")
	// The statistics collector lags a little behind commits.
	time.Sleep(time.Second)
	conn.Exec(context.Background(), "SELECT pg_stat_clear_snapshot()")
	var n int64
	if err := conn.QueryRow(context.Background(), "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del)::int8 FROM pg_stat_user_tables").Scan(&n); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	return n
}

func waitRow(t testing.TB, c *pgtest.Cluster, sql string, want int64, within time.Duration) {
	t.Helper()
	conn := c.Connect(t, "app")
	deadline := time.Now().Add(within)
	for {
		var n int64
		if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d after %s, want %d", sql, n, within, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lagAtRate runs pgbench at a fixed rate while probes, one every 10 ms,
// are inserted on the source; each probe's lag is when it became visible
// on dst minus when it was inserted.
func lagAtRate(t testing.TB, src, dst *pgtest.Cluster, script string, rate int, d time.Duration, firstID int) (p50, p99 time.Duration, n int, tps string) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	var out string
	wg.Go(func() {
		argv := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(src.Port), "-U", "postgres", "-n", "-c", "4", "-j", "2",
			"-R", strconv.Itoa(rate), "-T", strconv.Itoa(int(d.Seconds())), "-f", script, "app"}
		b, _ := exec.Command(filepath.Join(src.Bin, "pgbench"), argv...).CombinedOutput()
		out = string(b)
	})
	sent := map[int]time.Time{}
	var mu sync.Mutex
	wg.Go(func() {
		conn, err := pgx.Connect(ctx, src.ConnString("app"))
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		end := time.Now().Add(d - time.Second)
		for id := firstID; time.Now().Before(end); id++ {
			at := time.Now()
			if _, err := conn.Exec(ctx, "INSERT INTO bench_probe (id) VALUES ($1)", id); err != nil {
				return
			}
			mu.Lock()
			sent[id] = at
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	})
	seen := map[int]time.Duration{}
	conn := dst.Connect(t, "app")
	deadline := time.Now().Add(d + 2*time.Minute)
	last := firstID - 1
	for time.Now().Before(deadline) {
		rows, err := conn.Query(ctx, "SELECT id FROM bench_probe WHERE id > $1 ORDER BY id", last)
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := pgx.CollectRows(rows, pgx.RowTo[int32])
		now := time.Now()
		mu.Lock()
		for _, id := range ids {
			if at, ok := sent[int(id)]; ok {
				seen[int(id)] = now.Sub(at)
			}
			last = int(id)
		}
		total := len(sent)
		mu.Unlock()
		if time.Since(deadline.Add(-2*time.Minute)) > 0 && len(seen) >= total {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	var lags []time.Duration
	for _, l := range seen {
		lags = append(lags, l)
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	if len(lags) == 0 {
		t.Fatal("no probe arrived")
	}
	return lags[len(lags)/2], lags[len(lags)*99/100], len(lags), tpsLine(out)
}

// TestBenchFullIdentity measures catch-up of the same backlog of updates
// and deletes (one change a source transaction, as OLTP writes them) into
// (a) a table with a primary key, (b) a REPLICA IDENTITY FULL table with an
// index the twin can find the old row by, (c) one with no index, each
// drained alone by the follower, interleaved over rounds. Issue 14 wants
// (b) within 2x of (a). PGTWIN_BENCH=1 runs it; PGTWIN_BENCH_RI_ROWS sets
// the backlog (changes a table), PGTWIN_BENCH_RI_TABLE the table size.
func TestBenchFullIdentity(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1")
	}
	ctx := context.Background()
	size, backlog, rounds := envInt("PGTWIN_BENCH_RI_TABLE", 20000), envInt("PGTWIN_BENCH_RI_ROWS", 8000), envInt("PGTWIN_BENCH_ROUNDS", 3)
	src := pgtest.Start(t, pgtest.Options{Logical: true, Databases: []string{"app"}})
	src.Exec(t, "app", fmt.Sprintf(`
		CREATE TABLE ri_pk (id int PRIMARY KEY, v int, s text);
		CREATE TABLE ri_idx (id int NOT NULL, v int, s text);
		CREATE INDEX ri_idx_id ON ri_idx (id);
		ALTER TABLE ri_idx REPLICA IDENTITY FULL;
		CREATE TABLE ri_none (id int NOT NULL, v int, s text);
		ALTER TABLE ri_none REPLICA IDENTITY FULL;
		CREATE TABLE bench_marker (id int PRIMARY KEY);
		INSERT INTO ri_pk SELECT i, i, 'row ' || i FROM generate_series(1, %[1]d) i;
		INSERT INTO ri_idx SELECT * FROM ri_pk;
		INSERT INTO ri_none SELECT * FROM ri_pk;
		ANALYZE`, size))
	twin := pgtest.Start(t, pgtest.Options{})
	twin.Exec(t, "postgres", "CREATE ROLE pgtwin_owner NOLOGIN")
	twin.Exec(t, "postgres", "CREATE DATABASE app OWNER pgtwin_owner")
	f := &follower{
		Source:     source{URL: src.ConnString("app")},
		Plan:       anonymizePlan(anonymize.Rules{}, anonymize.PolicyMask, testKey, selection{}),
		TargetConn: func(context.Context) (string, error) { return twin.ConnString("app"), nil },
		Rebuild: func(ctx context.Context, fill func(context.Context, target) error) error {
			return fill(ctx, target{ConnString: twin.ConnString("app"), BinDir: twin.Bin})
		},
		SpillDir: t.TempDir(),
		Log:      zerolog.Nop(),
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	waitState(t, f, stateStreaming, 5*time.Minute)

	marker := 0
	// drain writes work (if any) while the follower is stopped, then times
	// the follower from its start to the backlog's end in the twin.
	drain := func(work string) time.Duration {
		f.Stop()
		if work != "" {
			src.Exec(t, "app", work)
		}
		marker++
		src.Exec(t, "app", fmt.Sprintf("INSERT INTO bench_marker VALUES (%d)", marker))
		start := time.Now()
		if err := f.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitRow(t, twin, fmt.Sprintf("SELECT count(*) FROM bench_marker WHERE id = %d", marker), 1, 20*time.Minute)
		return time.Since(start)
	}
	startup := drain("")
	// Every fourth step deletes a row and inserts it again (one
	// transaction), the others update one: changes = backlog * 5/4.
	changes := backlog + backlog/4
	script := func(table string, round int) string {
		return fmt.Sprintf(`DO $$ DECLARE k int; BEGIN FOR i IN 1..%[2]d LOOP
			k := 1 + (i * 7919 + %[3]d) %% %[4]d;
			IF i %% 4 = 0 THEN
				DELETE FROM %[1]s WHERE id = k;
				INSERT INTO %[1]s VALUES (k, i, 'new ' || i);
			ELSE
				UPDATE %[1]s SET v = v + 1 WHERE id = k;
			END IF;
			COMMIT;
		END LOOP; END $$`, table, backlog, round*104729, size)
	}
	tables := []string{"ri_pk", "ri_idx", "ri_none"}
	if v := os.Getenv("PGTWIN_BENCH_RI_TABLES"); v != "" {
		tables = strings.Split(v, ",")
	}
	rates := map[string][]float64{}
	var idxRatios []float64
	for round := range rounds {
		got := map[string]float64{}
		for j := range tables {
			table := tables[(round+j)%len(tables)]
			d := drain(script(table, round))
			got[table] = float64(changes) / d.Seconds()
			rates[table] = append(rates[table], got[table])
			t.Logf("round %d: %s: %d changes (%d source transactions) in %s: %.0f rows/s (%.0f rows/s without the start-up)", round+1, table, changes, backlog,
				d.Round(time.Millisecond), got[table], float64(changes)/(d-startup).Seconds())
		}
		idxRatios = append(idxRatios, got["ri_pk"]/got["ri_idx"])
		t.Logf("round %d: PK %.0f rows/s, RI FULL with index %.0f rows/s, RI FULL without index %.0f rows/s; PK/with index %.2f, PK/without index %.1f",
			round+1, got["ri_pk"], got["ri_idx"], got["ri_none"], got["ri_pk"]/got["ri_idx"], got["ri_pk"]/got["ri_none"])
	}
	med := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	t.Logf("medians of %d rounds (follower start-up, included in each, is %s): PK %.0f rows/s, RI FULL with index %.0f rows/s, without index %.0f rows/s; PK/with index %.2f (issue 14: at most 2)",
		rounds, startup.Round(time.Millisecond), med(rates["ri_pk"]), med(rates["ri_idx"]), med(rates["ri_none"]), med(idxRatios))
	if st := f.Status(); st.Missing != 0 {
		t.Errorf("%d updates/deletes found no row in the twin", st.Missing)
	}
	for _, table := range tables {
		q := "SELECT md5(string_agg(id || ' ' || v || ' ' || s, ',' ORDER BY id, v, s)) FROM " + table
		if s, w := query[string](t, src, q), query[string](t, twin, q); s != w {
			t.Errorf("%s differs: source md5 %s, twin %s", table, s, w)
		}
	}
}

// TestBenchApplyDirect times the apply alone (no stream, no source): the
// changes of TestBenchFullIdentity's backlog handed to the applier in
// groups, for a PK table and REPLICA IDENTITY FULL ones with and without
// an index, plus updates only on the PK table (how pgbench writes).
func TestBenchApplyDirect(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1")
	}
	ctx := context.Background()
	size, steps, group := envInt("PGTWIN_BENCH_RI_TABLE", 20000), envInt("PGTWIN_BENCH_RI_ROWS", 8000), envInt("PGTWIN_BENCH_GROUP", 500)
	c := pgtest.Start(t, pgtest.Options{})
	c.Exec(t, "postgres", fmt.Sprintf(`
		CREATE TABLE ri_pk (id int PRIMARY KEY, v int, s text);
		CREATE TABLE ri_idx (id int NOT NULL, v int, s text);
		CREATE INDEX ri_idx_id ON ri_idx (id);
		CREATE TABLE ri_none (id int NOT NULL, v int, s text);
		INSERT INTO ri_pk SELECT i, i, 'row ' || i FROM generate_series(1, %[1]d) i;
		INSERT INTO ri_idx SELECT * FROM ri_pk;
		INSERT INTO ri_none SELECT * FROM ri_pk;
		ANALYZE`, size))
	cfg, err := targetConfig(c.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	type val struct {
		v int
		s string
	}
	state := map[string]map[int]val{}
	var ver uint64
	txt := func(s string) pgoutput.TupleColumn {
		return pgoutput.TupleColumn{Kind: pgoutput.TupleText, Data: []byte(s)}
	}
	null := pgoutput.TupleColumn{Kind: pgoutput.TupleNull}
	// changes writes the backlog of TestBenchFullIdentity's script as the
	// stream would deliver it, and keeps what the table must hold after.
	changes := func(table string, full, updatesOnly bool, round int) []*change {
		flag := uint8(pgoutput.ColumnFlagKey)
		if full {
			flag = 0
		}
		ver++
		rs := &relState{ver: ver, qname: "public." + table, maskAt: []int{-1, -1, -1}, rel: &pgoutput.Relation{
			Namespace: "public", RelationName: table,
			Columns: []pgoutput.RelationColumn{{Name: "id", DataType: 23, Flags: flag}, {Name: "v", DataType: 23}, {Name: "s", DataType: 25}}}}
		cur := state[table]
		if cur == nil {
			cur = map[int]val{}
			for k := 1; k <= size; k++ {
				cur[k] = val{k, "row " + strconv.Itoa(k)}
			}
			state[table] = cur
		}
		tuple := func(k int) pgoutput.Tuple {
			return pgoutput.Tuple{txt(strconv.Itoa(k)), txt(strconv.Itoa(cur[k].v)), txt(cur[k].s)}
		}
		var out []*change
		for i := 1; i <= steps; i++ {
			k := 1 + (i*7919+round*104729)%size
			old := tuple(k)
			if i%4 == 0 && !updatesOnly {
				d := &change{kind: 'D', rs: rs, oldType: pgoutput.OldTupleKey, oldT: pgoutput.Tuple{old[0], null, null}}
				if full {
					d.oldType, d.oldT = pgoutput.OldTupleFull, old
				}
				cur[k] = val{i, "new " + strconv.Itoa(i)}
				out = append(out, d, &change{kind: 'I', rs: rs, newT: tuple(k)})
				continue
			}
			cur[k] = val{cur[k].v + 1, cur[k].s}
			u := &change{kind: 'U', rs: rs, newT: tuple(k)}
			if full {
				u.oldType, u.oldT = pgoutput.OldTupleFull, old
			}
			out = append(out, u)
		}
		return out
	}
	// The twin backend's CPU time tells variants apart on a loaded
	// machine, where wall time varies threefold from run to run.
	apply := func(chs []*change) (time.Duration, time.Duration) {
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		a := newApplier(conn, zerolog.Nop())
		pid := conn.PID()
		cpu0 := backendCPU(t, pid)
		start := time.Now()
		for i, ch := range chs {
			if err := a.begin(ctx); err != nil {
				t.Fatal(err)
			}
			if err := a.apply(ctx, ch); err != nil {
				t.Fatal(err)
			}
			if i%group == group-1 || i == len(chs)-1 {
				if err := a.flush(ctx); err != nil {
					t.Fatal(err)
				}
				if err := a.exec(ctx, "COMMIT"); err != nil {
					t.Fatal(err)
				}
				a.open = false
			}
		}
		if a.missing != 0 {
			t.Errorf("%d changes found no row", a.missing)
		}
		return time.Since(start), backendCPU(t, pid) - cpu0
	}
	for round := range envInt("PGTWIN_BENCH_ROUNDS", 3) {
		var line []string
		for _, w := range []struct {
			table      string
			full, upds bool
		}{{"ri_pk", false, true}, {"ri_pk", false, false}, {"ri_idx", true, false}, {"ri_none", true, false}} {
			chs := changes(w.table, w.full, w.upds, round)
			d, cpu := apply(chs)
			name := w.table
			if w.upds {
				name += " (updates only)"
			}
			line = append(line, fmt.Sprintf("%s %.0f rows/s (twin CPU %.1f µs a row)", name, float64(len(chs))/d.Seconds(),
				float64(cpu.Microseconds())/float64(len(chs))))
		}
		t.Logf("round %d, apply alone, %d changes a transaction: %s", round+1, group, strings.Join(line, ", "))
	}
	conn := c.Connect(t, "postgres")
	defer conn.Close(ctx)
	for table, cur := range state {
		var want []string
		for k := 1; k <= size; k++ {
			want = append(want, fmt.Sprintf("%d %d %s", k, cur[k].v, cur[k].s))
		}
		var got string
		if err := conn.QueryRow(ctx, "SELECT string_agg(id || ' ' || v || ' ' || s, ',' ORDER BY id) FROM "+table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != strings.Join(want, ",") {
			t.Errorf("%s does not hold what the changes left", table)
		}
	}
}

// backendCPU is the CPU time a server process has run (Linux schedstat).
func backendCPU(t testing.TB, pid uint32) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		t.Fatalf("backend CPU time: %v", err)
	}
	ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
	if err != nil {
		t.Fatalf("backend CPU time: %v", err)
	}
	return time.Duration(ns)
}
