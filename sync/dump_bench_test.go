package twinsync

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/btrfs"
	"github.com/pgtwin/pgtwin/engine/enginetest"
	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/twin"
)

// TestBenchDumpSync compares, in one run on one machine and in alternating
// order, what a user waits for in a masked dump sync (twin.ReplaceMain on
// btrfs: clone of the empty template, start, fill, stop, snapshot, start,
// switch) with the tools it replaces, unmasked:
//
//   - large (pgbench scale PGTWIN_BENCH_SCALE, default 68, plus
//     PGTWIN_BENCH_CUSTOMERS customers with email, name and phone masked,
//     default 2,000,000; ~1.5 GB): sync.parallel = N against
//     pg_dump -Fd -j N + pg_restore -j N, N = 2 and 4;
//   - small (pgbench scale 1 plus 20,000 customers; ~16 MB): sync.parallel
//     = 2 against pg_dump -Fc | pg_restore.
//
// The baseline restores into a running cluster with PostgreSQL's default
// settings (fsync on), a fresh database each time. PGTWIN_BENCH=1 runs it;
// PGTWIN_BENCH_ROUNDS rounds (default 2), PGTWIN_BENCH_LARGE=0 skips the
// large database, PGTWIN_BENCH_SPLIT_AB=1 compares, for the large one,
// pgtwin with and without big tables split into ctid ranges instead, and
// PGTWIN_BENCH_AB=binary, =writeback or =locale pgtwin with and without that.
func TestBenchDumpSync(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1")
	}
	rounds := envInt("PGTWIN_BENCH_ROUNDS", 2)
	scale := envInt("PGTWIN_BENCH_SCALE", 68)
	customers := envInt("PGTWIN_BENCH_CUSTOMERS", 2000000)
	large := os.Getenv("PGTWIN_BENCH_LARGE") != "0"

	settings := map[string]string{"shared_buffers": "256MB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"app", "small"}, Settings: settings})
	start := time.Now()
	if large {
		benchSource(t, src, "app", scale, customers)
	}
	benchSource(t, src, "small", 1, 20000)
	t.Logf("sources generated in %v", time.Since(start).Round(time.Second))

	b := newBenchTwin(t)
	base := pgtest.Start(t, pgtest.Options{Settings: map[string]string{"fsync": "on", "shared_buffers": "128MB"}})

	type result struct {
		name  string
		durs  []time.Duration
		notes []string
	}
	results := map[string]*result{}
	var order []string
	record := func(name string, d time.Duration, note string) {
		r := results[name]
		if r == nil {
			r = &result{name: name}
			results[name] = r
			order = append(order, name)
		}
		r.durs = append(r.durs, d)
		r.notes = append(r.notes, note)
		fmt.Printf("  %-44s %8.2fs  load %s  %s\n", name, d.Seconds(), loadavg(), note)
	}
	type pair struct {
		a, b  string
		runA  func() (time.Duration, string)
		runB  func() (time.Duration, string)
		ratio []float64
	}
	var pairs []*pair
	if large {
		for _, n := range []int{2, 4} {
			pairs = append(pairs, &pair{
				a:    fmt.Sprintf("large: pgtwin dump sync, masked, parallel %d", n),
				b:    fmt.Sprintf("large: pg_dump -Fd -j %d + pg_restore -j %d", n, n),
				runA: func() (time.Duration, string) { return b.sync(t, src, "app", n) },
				runB: func() (time.Duration, string) { return baselineDir(t, src, base, "app", n) },
			})
		}
	}
	if os.Getenv("PGTWIN_BENCH_SPLIT_AB") == "1" {
		// Only the split of big tables into ctid ranges against one COPY
		// stream per table, both pgtwin.
		split := func() (time.Duration, string) {
			old := splitPages
			splitPages = 4096
			defer func() { splitPages = old }()
			return b.sync(t, src, "app", 2)
		}
		pairs = []*pair{{
			a:    "large: pgtwin, parallel 2, big tables split",
			b:    "large: pgtwin, parallel 2, one stream a table",
			runA: split,
			runB: func() (time.Duration, string) { return b.sync(t, src, "app", 2) },
		}}
	}
	if ab := os.Getenv("PGTWIN_BENCH_AB"); ab != "" {
		// One change against the code without it, both pgtwin at N = 2:
		// "binary" (pass-through tables in COPY binary) or "writeback" (a
		// copied table's files written back while others still copy) or
		// "locale" (the twin's database in the source's locale rather than
		// the host's default; each switch makes a new template, in "new main").
		flag := map[string]*bool{"binary": &binaryCopyOn, "writeback": &writebackOn, "locale": &benchSourceLocale}[ab]
		if flag == nil {
			t.Fatalf("PGTWIN_BENCH_AB=%s: want binary, writeback or locale", ab)
		}
		as := func(on bool) func() (time.Duration, string) {
			return func() (time.Duration, string) {
				old := *flag
				*flag = on
				defer func() { *flag = old }()
				return b.sync(t, src, "app", 2)
			}
		}
		pairs = []*pair{{
			a:    "large: pgtwin, parallel 2, with " + ab,
			b:    "large: pgtwin, parallel 2, without " + ab,
			runA: as(true),
			runB: as(false),
		}}
	}
	pairs = append(pairs, &pair{
		a:    "small: pgtwin dump sync, masked, parallel 2",
		b:    "small: pg_dump -Fc | pg_restore",
		runA: func() (time.Duration, string) { return b.sync(t, src, "small", 2) },
		runB: func() (time.Duration, string) { return baselinePipe(t, src, base, "small") },
	})
	for round := range rounds {
		fmt.Printf("round %d\n", round+1)
		for i, p := range pairs {
			var da, db time.Duration
			if (round+i)%2 == 0 {
				da, na := p.runA()
				record(p.a, da, na)
				db, nb := p.runB()
				record(p.b, db, nb)
				p.ratio = append(p.ratio, da.Seconds()/db.Seconds())
				continue
			}
			db, nb := p.runB()
			record(p.b, db, nb)
			da, na := p.runA()
			record(p.a, da, na)
			p.ratio = append(p.ratio, da.Seconds()/db.Seconds())
		}
	}
	fmt.Println("summary (median of rounds)")
	for _, name := range order {
		r := results[name]
		fmt.Printf("  %-44s %8.2fs  (%s)\n", name, median(r.durs).Seconds(), joinDurs(r.durs))
	}
	for _, p := range pairs {
		fmt.Printf("  ratio %-38s %.2f  (rounds %s)\n", strings.TrimSuffix(p.a, ", masked")+" / baseline", medianF(p.ratio), joinF(p.ratio))
	}
}

// benchSource makes database db of the source: pgbench tables (generated
// server-side, with primary and foreign keys) and a customers table with
// PII and two secondary indexes.
func benchSource(t *testing.T, src *pgtest.Cluster, db string, scale, customers int) {
	t.Helper()
	runCmd(t, filepath.Join(src.Bin, "pgbench"), "-i", "-q", "-I", "dtGvpf", "-s", strconv.Itoa(scale), src.ConnString(db))
	src.Exec(t, db, fmt.Sprintf(`
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, full_name text NOT NULL, phone text,
	branch int NOT NULL REFERENCES pgbench_branches, created_at timestamptz NOT NULL);
INSERT INTO customers SELECT i, 'user' || i || '@example.com', 'Firstname' || (i %% 997) || ' Lastname' || i,
	'+1 555 ' || lpad(i::text, 7, '0'), 1 + i %% %[2]d, '2020-01-01'::timestamptz + i * interval '17 seconds'
FROM generate_series(1, %[1]d) i;
CREATE UNIQUE INDEX customers_email ON customers (email);
CREATE INDEX customers_branch_created ON customers (branch, created_at);`, customers, scale))
	src.Exec(t, db, "VACUUM ANALYZE")
	var size int64
	if err := src.Connect(t, db).QueryRow(context.Background(), "SELECT pg_database_size(current_database())").Scan(&size); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("source %s: pgbench scale %d + %d customers, %.1f MB\n", db, scale, customers, float64(size)/(1<<20))
	// Warm the OS cache so neither contender pays the first read.
	src.Exec(t, db, "SELECT count(*) FROM pgbench_accounts; SELECT count(*) FROM customers")
}

// benchSourceLocale off makes the twin's database the host's default locale
// (PGTWIN_BENCH_AB=locale), as before it followed the source's.
var benchSourceLocale = true

// benchTwin is a twin on a loop-mounted btrfs, as the daemon runs one.
type benchTwin struct {
	tw  *twin.Twin
	eng *engine.Engine
}

func newBenchTwin(t *testing.T) *benchTwin {
	t.Helper()
	ctx := context.Background()
	root := enginetest.LoopFS(t, "btrfs", 60<<30)
	cfg := config.DefaultConfig()
	cfg.Daemon.DataDir = filepath.Join(root, "d")
	sock, err := os.MkdirTemp("", "twb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	cfg.Daemon.Socket = filepath.Join(sock, "pgtwin.sock")
	cfg.Daemon.AdminGroup = "pgtwin-test-nonexistent"
	cfg.Source.URL = "postgres://bench@127.0.0.1/app"
	cfg.Engine.PortRange = config.PortRange{Low: 18900, High: 18939}
	log := zerolog.Nop()
	drv, err := btrfs.Open(ctx, filepath.Join(root, "volumes"), log)
	if err != nil {
		t.Fatalf("btrfs driver: %v", err)
	}
	eng, err := engine.New(ctx, engine.Options{Config: cfg.Engine, DataDir: cfg.Daemon.DataDir, Driver: drv, Logger: log})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	tw, err := twin.New(ctx, twin.Options{Config: cfg, Engine: eng, Logger: log})
	if err != nil {
		t.Fatalf("twin: %v", err)
	}
	if err := tw.Start(ctx); err != nil {
		t.Fatalf("start twin: %v", err)
	}
	// A twin's first replace makes the template every later one clones
	// (initdb once); the rounds measure the later ones. Its locale is the
	// sources' (pgtest clusters are initdb'd --locale=C), as a sync asks.
	cLocale := engine.DatabaseLocale{Provider: engine.LocaleLibc, Collate: "C", Ctype: "C"}
	if _, err := tw.ReplaceMain(ctx, cLocale, func(context.Context, *engine.Instance) error { return nil }); err != nil {
		t.Fatalf("first replace: %v", err)
	}
	b := &benchTwin{tw: tw, eng: eng}
	t.Cleanup(func() {
		tw.Stop()
		ids, _ := eng.Volumes(context.Background())
		for _, id := range ids {
			if _, ok := eng.Instance(id); ok {
				eng.Stop(context.Background(), id)
			}
		}
	})
	return b
}

// sync replaces main with a masked dump sync of database db and returns how
// long the whole replace took, with its parts.
func (b *benchTwin) sync(t *testing.T, src *pgtest.Cluster, db string, parallel int) (time.Duration, string) {
	t.Helper()
	ctx := context.Background()
	rules, err := anonymize.ParseRules(map[string]map[string]any{
		"public.customers.email":     {"transform": "email"},
		"public.customers.full_name": {"transform": "name"},
		"public.customers.phone":     {"transform": "phone"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	level := zerolog.InfoLevel
	if os.Getenv("PGTWIN_BENCH_DEBUG") != "" {
		level = zerolog.DebugLevel
	}
	d := &dumper{
		Source:   source{URL: src.ConnString(db)},
		Parallel: parallel,
		Plan:     anonymizePlan(rules, anonymize.PolicyMask, make([]byte, 32), selection{}),
		Log:      zerolog.New(&logBuf).Level(level),
	}
	var p progress
	var fillStart, fillEnd time.Time
	begin := time.Now()
	// As the daemon's sync does: the source's locale first, for the new main.
	loc, err := sourceLocale(ctx, d.Source, backoff{}, d.Log)
	if err != nil {
		t.Fatalf("source locale of %s: %v", db, err)
	}
	if !benchSourceLocale {
		loc = engine.DatabaseLocale{}
	}
	_, err = b.tw.ReplaceMain(ctx, loc, func(ctx context.Context, inst *engine.Instance) error {
		fillStart = time.Now()
		defer func() { fillEnd = time.Now() }()
		return d.Run(ctx, target{ConnString: inst.ConnString(inst.Superuser, b.tw.MainDatabase()), BinDir: src.Bin}, &p)
	})
	total := time.Since(begin)
	if os.Getenv("PGTWIN_BENCH_DEBUG") != "" {
		os.Stderr.Write(logBuf.Bytes())
	}
	if err != nil {
		t.Fatalf("dump sync of %s: %v\n%s", db, err, logBuf.String())
	}
	b.check(t, src, db)
	st := p.Stats()
	steps := map[string]time.Time{}
	for _, s := range st.Steps {
		steps[s.Step] = s.Start
	}
	phase := func(from, to string) string {
		if steps[from].IsZero() || steps[to].IsZero() {
			return "-"
		}
		return fmt.Sprintf("%.2f", steps[to].Sub(steps[from]).Seconds())
	}
	return total, fmt.Sprintf("(new main %.2f, schema %s, copy %s, post-data %s, sequences+analyze %s, snapshot+switch %.2f)",
		fillStart.Sub(begin).Seconds(), phase(stepSchema, stepCopy), phase(stepCopy, stepPostData),
		phase(stepPostData, stepSequences), phase(stepSequences, stepDone), begin.Add(total).Sub(fillEnd).Seconds())
}

// check compares main's row counts with the source's and that no email
// came through unmasked.
func (b *benchTwin) check(t *testing.T, src *pgtest.Cluster, db string) {
	t.Helper()
	ctx := context.Background()
	conn, err := b.tw.MainConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	sconn := src.Connect(t, db)
	for _, q := range []string{"SELECT count(*) FROM public.pgbench_accounts", "SELECT count(*) FROM public.customers",
		"SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'", "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"} {
		var a, s int64
		if err := conn.QueryRow(ctx, q).Scan(&a); err != nil {
			t.Fatalf("main: %s: %v", q, err)
		}
		if err := sconn.QueryRow(ctx, q).Scan(&s); err != nil {
			t.Fatalf("source: %s: %v", q, err)
		}
		if a != s {
			t.Fatalf("%s: main %d, source %d", q, a, s)
		}
	}
	var leaked int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM public.customers WHERE email = 'user' || id || '@example.com'").Scan(&leaked); err != nil {
		t.Fatal(err)
	}
	if leaked != 0 {
		t.Fatalf("%d customers' emails came through unmasked", leaked)
	}
}

var baseDBs int

// baselineDir times pg_dump -Fd -j n + pg_restore -j n of db into a fresh
// database of base.
func baselineDir(t *testing.T, src, base *pgtest.Cluster, db string, n int) (time.Duration, string) {
	t.Helper()
	target := freshBaseDB(t, base)
	dir := filepath.Join(t.TempDir(), "dump")
	begin := time.Now()
	runCmd(t, filepath.Join(src.Bin, "pg_dump"), "-Fd", "-j", strconv.Itoa(n), "-f", dir, "--no-owner", "--no-privileges", "-d", src.ConnString(db))
	dumped := time.Since(begin)
	runCmd(t, filepath.Join(src.Bin, "pg_restore"), "-j", strconv.Itoa(n), "--no-owner", "--no-privileges", "-d", base.ConnString(target), dir)
	total := time.Since(begin)
	os.RemoveAll(dir)
	base.Exec(t, "postgres", "DROP DATABASE "+target)
	return total, fmt.Sprintf("(dump %.2f, restore %.2f)", dumped.Seconds(), (total - dumped).Seconds())
}

// baselinePipe times pg_dump -Fc | pg_restore of db into a fresh database.
func baselinePipe(t *testing.T, src, base *pgtest.Cluster, db string) (time.Duration, string) {
	t.Helper()
	target := freshBaseDB(t, base)
	begin := time.Now()
	runCmd(t, "sh", "-c", fmt.Sprintf("set -e; %s -Fc --no-owner --no-privileges -d '%s' | %s --no-owner --no-privileges -d '%s'",
		filepath.Join(src.Bin, "pg_dump"), src.ConnString(db), filepath.Join(src.Bin, "pg_restore"), base.ConnString(target)))
	total := time.Since(begin)
	base.Exec(t, "postgres", "DROP DATABASE "+target)
	return total, ""
}

func freshBaseDB(t *testing.T, base *pgtest.Cluster) string {
	baseDBs++
	name := fmt.Sprintf("b%d", baseDBs)
	base.Exec(t, "postgres", "CREATE DATABASE "+name)
	return name
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianF(f []float64) float64 {
	s := append([]float64(nil), f...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func joinDurs(d []time.Duration) string {
	var s []string
	for _, x := range d {
		s = append(s, fmt.Sprintf("%.2f", x.Seconds()))
	}
	return strings.Join(s, ", ")
}

func joinF(f []float64) string {
	var s []string
	for _, x := range f {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, ", ")
}

func runCmd(t *testing.T, argv ...string) {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
}
