package twinsync

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// logicalSchema is the logical tests' own source: a small shop (FKs, a
// UNIQUE citext email, jsonb, arrays, an enum, generated and identity
// columns, a trigger, a partitioned table) plus what the apply must get
// right: REPLICA IDENTITY FULL (no key) and USING INDEX, TOASTed values, an
// append-only table fed by a sequence, a parent for TRUNCATE CASCADE, and
// an unpublished table.
const logicalSchema = shopSchema + `
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, kind text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE SCHEMA audit;
CREATE TABLE audit.events (id bigserial PRIMARY KEY, payload text);

CREATE TABLE ri_full (a int, b text, j json, n numeric);
ALTER TABLE ri_full REPLICA IDENTITY FULL;
CREATE TABLE ri_index (id int NOT NULL, code text NOT NULL, note text, email text);
CREATE UNIQUE INDEX ri_index_code ON ri_index (code);
ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_code;
CREATE TABLE toasty (id int PRIMARY KEY, big text, counter int);
CREATE TABLE seqlog (id bigserial PRIMARY KEY, batch int NOT NULL, at timestamptz DEFAULT now());
CREATE TABLE parents (id int PRIMARY KEY, name text);
CREATE TABLE children (id int PRIMARY KEY, parent_id int REFERENCES parents (id), v int);
CREATE TABLE unpublished (id bigserial PRIMARY KEY, v text);
`

func fillLogical(t testing.TB, c *pgtest.Cluster, customers int) {
	t.Helper()
	c.Exec(t, "app", fmt.Sprintf(shopFill+`
INSERT INTO events SELECT i, '2024-06-01'::date + i %% 400, 'k' || i %% 3 FROM generate_series(1, %[1]d) i;
INSERT INTO audit.events (payload) SELECT 'event ' || i FROM generate_series(1, 100) i;
ANALYZE;
`, customers))
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

var logicalRuleMap = map[string]map[string]any{
	"public.customers.email":      {"transform": "email"},
	"public.customers.full_name":  {"transform": "name"},
	"public.customers.phone":      {"transform": "phone"},
	"public.addresses.street":     {"transform": "address"},
	"public.payments.card_number": {"transform": "partial", "keep_last": 4},
	"public.ri_index.email":       {"transform": "email"},
	"public.ri_full.b":            {"transform": "hash"},
	"public.toasty.big":           {"transform": "hash"},
	"public.parents.name":         {"transform": "name"},
}

func logicalRules(t testing.TB) anonymize.Rules {
	t.Helper()
	rules, err := anonymize.ParseRules(logicalRuleMap)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// logicalEnv is a source, a twin standing in for main, and a follower
// between them.
type logicalEnv struct {
	t      testing.TB
	src    *pgtest.Cluster
	tgt    *pgtest.Cluster
	sel    selection
	rules  anonymize.Rules
	policy string
	spill  string
	f      *follower
	logs   *syncBuffer
	srcURL string // what the follower dials (a proxy in some tests)
}

func newLogicalEnv(t testing.TB, customers int) *logicalEnv {
	t.Helper()
	src := pgtest.Start(t, pgtest.Options{Logical: true, Databases: []string{"app"}, Settings: map[string]string{
		"logical_decoding_work_mem": "'64kB'", // stream transactions beyond this
		"wal_sender_timeout":        "'20s'",
	}})
	src.Exec(t, "app", logicalSchema)
	if customers > 0 {
		fillLogical(t, src, customers)
	}
	src.Exec(t, "app", `INSERT INTO toasty SELECT i, repeat(md5(i::text), 400), 0 FROM generate_series(1, 20) i;
		INSERT INTO parents SELECT i, 'Parent ' || i FROM generate_series(1, 10) i;
		INSERT INTO children SELECT i, 1 + i % 10, i FROM generate_series(1, 50) i;
		INSERT INTO ri_full SELECT i, 'b' || i, '{"k": 1}', i * 1.5 FROM generate_series(1, 20) i;
		INSERT INTO ri_full VALUES (1, 'b1', '{"k": 1}', 1.5);
		INSERT INTO ri_index SELECT i, 'c' || i, 'n', 'u' || i || '@example.com' FROM generate_series(1, 20) i;`)
	tgt := pgtest.Start(t, pgtest.Options{})
	tgt.Exec(t, "postgres", "CREATE ROLE pgtwin_owner NOLOGIN")
	tgt.Exec(t, "postgres", "CREATE DATABASE app OWNER pgtwin_owner")
	spill, err := os.MkdirTemp("", "pgtwin-spill-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(spill) })
	e := &logicalEnv{t: t, src: src, tgt: tgt, sel: selection{ExcludeTables: []string{"audit.events", "unpublished"}},
		rules: logicalRules(t), policy: anonymize.PolicyMask, spill: spill, srcURL: src.ConnString("app")}
	return e
}

func (e *logicalEnv) follower() *follower {
	var logs syncBuffer
	e.logs = &logs
	f := &follower{
		Source:    source{URL: e.srcURL},
		Selection: e.sel,
		Plan:      anonymizePlan(e.rules, e.policy, testKey, e.sel),
		TargetConn: func(context.Context) (string, error) {
			return e.tgt.ConnString("app"), nil
		},
		Rebuild: func(ctx context.Context, fill func(context.Context, target) error) error {
			conn, err := pgx.Connect(ctx, e.tgt.ConnString("postgres"))
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS app WITH (FORCE)"); err != nil {
				return err
			}
			if _, err := conn.Exec(ctx, "CREATE DATABASE app OWNER pgtwin_owner"); err != nil {
				return err
			}
			return fill(ctx, target{ConnString: e.tgt.ConnString("app"), BinDir: e.tgt.Bin})
		},
		SpillDir:         e.spill,
		SpillMemory:      256 << 10,
		SequenceInterval: 2 * time.Second,
		StatusInterval:   time.Second,
		Backoff:          backoff{Initial: 50 * time.Millisecond, Max: time.Second, Attempts: 5},
		Log:              zerolog.New(io.MultiWriter(&logs, testLogOut())).Level(zerolog.InfoLevel),
		TempDir:          e.spill,
	}
	e.f = f
	return f
}

// waitState waits for the follower to reach state.
func waitState(t testing.TB, f *follower, state string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		st := f.Status()
		if st.State == state {
			return
		}
		if st.State == stateFailed && state != stateFailed {
			t.Fatalf("follower failed: %s", st.LastError)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("follower state %s after %s, want %s (last error: %s)", f.Status().State, within, state, f.Status().LastError)
}

// barrier emits a logical message on the source and returns its LSN.
func barrier(t testing.TB, src *pgtest.Cluster) pgoutput.LSN {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), src.ConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(context.Background(), "SELECT pg_logical_emit_message(false, 'pgtwin-test', 'barrier')::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, err := pgoutput.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

func (e *logicalEnv) sync(within time.Duration) {
	e.t.Helper()
	lsn := barrier(e.t, e.src)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := e.f.WaitPassed(ctx, lsn); err != nil {
		e.t.Fatalf("barrier %s not applied: %v (status %+v)", lsn, err, e.f.Status())
	}
}

// equal compares every published table: the source's rows masked in the
// test with the same plan and key, against the twin's rows, as md5 of the
// sorted COPY lines.
func (e *logicalEnv) equal() {
	equalTwin(e.t, e.src, e.tgt, e.sel, e.rules, e.policy)
}

func equalTwin(t testing.TB, src, tgt *pgtest.Cluster, sel selection, rules anonymize.Rules, policy string) {
	t.Helper()
	ctx := context.Background()
	sc, tc := textConn(t, src), textConn(t, tgt)
	cat, err := ReadCatalog(ctx, sc, sel)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := anonymize.BuildPlan(cat, rules, policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range plan.Tables {
		m, err := plan.Table(tp.Schema, tp.Name, testKey)
		if err != nil {
			t.Fatal(err)
		}
		qname := pgx.Identifier{tp.Schema, tp.Name}.Sanitize()
		cols := make([]string, len(m.Columns()))
		for i, c := range m.Columns() {
			cols[i] = pgx.Identifier{c}.Sanitize()
		}
		sel := "COPY (SELECT " + strings.Join(cols, ", ") + " FROM " + qname + ") TO STDOUT"
		srcLines := copyLines(t, sc, sel)
		for i, l := range srcLines {
			out, err := m.MaskCopyLine(nil, []byte(l))
			if err != nil {
				t.Fatal(err)
			}
			srcLines[i] = string(out)
		}
		// Let the twin's types print the masked source rows (jsonb
		// normalises what a transformer wrote) through a temp table.
		if _, err := tc.Exec(ctx, "DROP TABLE IF EXISTS pg_temp.cmp; CREATE TEMP TABLE cmp (LIKE "+qname+")"); err != nil {
			t.Fatal(err)
		}
		in := strings.Join(srcLines, "\n")
		if len(srcLines) > 0 {
			in += "\n"
		}
		if _, err := tc.PgConn().CopyFrom(ctx, strings.NewReader(in), "COPY pg_temp.cmp ("+strings.Join(cols, ", ")+") FROM STDIN"); err != nil {
			t.Fatalf("load masked source rows of %s: %v", qname, err)
		}
		srcLines = copyLines(t, tc, "COPY (SELECT "+strings.Join(cols, ", ")+" FROM pg_temp.cmp) TO STDOUT")
		tgtLines := copyLines(t, tc, sel)
		sh, th := hashLines(srcLines), hashLines(tgtLines)
		if sh != th {
			t.Errorf("%s: masked source (%d rows, md5 %s) != twin (%d rows, md5 %s)%s", qname, len(srcLines), sh, len(tgtLines), th,
				firstDiff(srcLines, tgtLines))
		}
	}
}

func firstDiff(a, b []string) string {
	sort.Strings(a)
	sort.Strings(b)
	in := func(s []string, v string) bool {
		i := sort.SearchStrings(s, v)
		return i < len(s) && s[i] == v
	}
	var out []string
	for _, v := range a {
		if !in(b, v) && len(out) < 3 {
			out = append(out, "\n  only in source: "+trunc(v))
		}
	}
	for _, v := range b {
		if !in(a, v) && len(out) < 6 {
			out = append(out, "\n  only in twin:   "+trunc(v))
		}
	}
	return strings.Join(out, "")
}

func trunc(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

func textConn(t testing.TB, c *pgtest.Cluster) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(c.ConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["TimeZone"] = "UTC"
	cfg.RuntimeParams["DateStyle"] = "ISO"
	cfg.RuntimeParams["extra_float_digits"] = "3"
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func copyLines(t testing.TB, conn *pgx.Conn, sql string) []string {
	t.Helper()
	var b bytes.Buffer
	if _, err := conn.PgConn().CopyTo(context.Background(), &b, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	s := strings.TrimSuffix(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func hashLines(lines []string) string {
	s := append([]string(nil), lines...)
	sort.Strings(s)
	h := md5.New()
	for _, l := range s {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// grepDir reports files under dir containing any of the needles.
func grepDir(t testing.TB, dir string, needles []string) []string {
	t.Helper()
	var hits []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Size() > 1<<30 {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				hits = append(hits, fmt.Sprintf("%s contains %q", p, n))
				break
			}
		}
		return nil
	})
	return hits
}

// testLogOut shows the follower's log on stderr with PGTWIN_TEST_LOG=1.
func testLogOut() io.Writer {
	if os.Getenv("PGTWIN_TEST_LOG") == "1" {
		return os.Stderr
	}
	return io.Discard
}
