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
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/pgtest"
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
// fixed offered load. PGTWIN_BENCH=1 runs it.
func TestBenchLogical(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1")
	}
	ctx := context.Background()
	settings := map[string]string{"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}
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
		drainNative := func() time.Duration {
			start := time.Now()
			native.Exec(t, "app", "ALTER SUBSCRIPTION native_sub ENABLE")
			waitRow(t, native, marker, 1, 10*time.Minute)
			return time.Since(start)
		}
		drainTwin := func() time.Duration {
			start := time.Now()
			if err := f.Start(ctx); err != nil {
				t.Fatal(err)
			}
			waitRow(t, twin, marker, 1, 10*time.Minute)
			return time.Since(start)
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
