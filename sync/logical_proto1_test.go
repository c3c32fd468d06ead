package twinsync

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// TestLogicalProto1MatchesDumpTwin follows the source as a PostgreSQL 12
// one (proto_version 1: no streaming, no messages; no wal_status), through
// the workload the protocol-2 test runs plus pgbench, and checks the twin
// row for row against a dump sync of the same source under the same key.
func TestLogicalProto1MatchesDumpTwin(t *testing.T) {
	ctx := context.Background()
	e := newLogicalEnv(t, 300)
	pgbench(t, e.src, "-i", "-s", "1", "-q")
	e.src.Exec(t, "app", "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")

	f := e.follower()
	f.treatAsVersion = 120000
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	waitState(t, f, stateStreaming, 2*time.Minute)
	if !strings.Contains(e.logs.String(), `"proto_version":1`) {
		t.Fatalf("the follower did not log streaming with proto_version 1:\n%s", e.logs)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		out, err := exec.Command(filepath.Join(e.src.Bin, "pgbench"), "-h", "127.0.0.1", "-p", strconv.Itoa(e.src.Port),
			"-U", "postgres", "-c", "2", "-T", "5", "-n", "app").CombinedOutput()
		if err != nil {
			errs <- fmt.Errorf("pgbench: %v\n%s", err, out)
		}
	})
	wg.Go(func() {
		conn, err := pgx.Connect(ctx, e.src.ConnString("app"))
		if err != nil {
			errs <- err
			return
		}
		defer conn.Close(ctx)
		for i, sql := range workloadScripts {
			if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				errs <- fmt.Errorf("script %d: %w", i, err)
				return
			}
		}
		// Far beyond logical_decoding_work_mem (64kB here): whole, at commit.
		if _, err := conn.Exec(ctx, `INSERT INTO seqlog (batch) SELECT 9 FROM generate_series(1, 100000)`); err != nil {
			errs <- fmt.Errorf("big transaction: %w", err)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The barrier's message is not sent without the messages option: the
	// twin passes it on the server's keepalives alone.
	e.sync(3 * time.Minute)
	e.equal()
	if err := f.Snapshot(ctx, func(context.Context, string) error { return nil }); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}

	st := f.Status()
	if st.Streamed != 0 || st.SpilledBytes != 0 {
		t.Errorf("streamed %d transactions (%d bytes spilled) under proto_version 1", st.Streamed, st.SpilledBytes)
	}
	if st.Missing != 0 {
		t.Errorf("%d updates/deletes found no row in the twin", st.Missing)
	}
	if st.State != stateStreaming || st.Rows < 100000 {
		t.Errorf("status = %+v, want streaming with at least 100000 rows", st)
	}
	// The monitor reads the slot without wal_status, as on 12.
	if st.ConfirmedLSN == "" || st.SlotHealth != "" {
		t.Errorf("slot health read as on PostgreSQL 12: confirmed %q, health %q (want a position and no wal_status)", st.ConfirmedLSN, st.SlotHealth)
	}

	dumpTwin, tgt := newTarget(t)
	d := &dumper{Source: source{URL: e.src.ConnString("app")}, Selection: e.sel, Parallel: 2,
		Plan: anonymizePlan(e.rules, e.policy, testKey, e.sel)}
	if err := d.Run(ctx, tgt, nil); err != nil {
		t.Fatalf("dump sync: %v", err)
	}
	sameTwins(t, e.src, e.tgt, dumpTwin, e.sel, e.rules, e.policy)
}

// sameTwins compares every synced table of two twins of src (masked rows as
// md5 of the sorted COPY lines) and their sequences.
func sameTwins(t *testing.T, src, a, b *pgtest.Cluster, sel selection, rules anonymize.Rules, policy string) {
	t.Helper()
	ctx := context.Background()
	cat, err := ReadCatalog(ctx, textConn(t, src), sel)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := anonymize.BuildPlan(cat, rules, policy)
	if err != nil {
		t.Fatal(err)
	}
	ac, bc := textConn(t, a), textConn(t, b)
	for _, tp := range plan.Tables {
		m, err := plan.Table(tp.Schema, tp.Name, testKey)
		if err != nil {
			t.Fatal(err)
		}
		cols := make([]string, len(m.Columns()))
		for i, c := range m.Columns() {
			cols[i] = pgx.Identifier{c}.Sanitize()
		}
		q := "COPY (SELECT " + strings.Join(cols, ", ") + " FROM " + pgx.Identifier{tp.Schema, tp.Name}.Sanitize() + ") TO STDOUT"
		al, bl := copyLines(t, ac, q), copyLines(t, bc, q)
		if ah, bh := hashLines(al), hashLines(bl); ah != bh {
			t.Errorf("%s.%s: logical twin (%d rows, md5 %s) != dump twin (%d rows, md5 %s)%s", tp.Schema, tp.Name, len(al), ah, len(bl), bh, firstDiff(al, bl))
		}
	}
	seqs := "COPY (SELECT schemaname, sequencename, last_value FROM pg_catalog.pg_sequences ORDER BY 1, 2) TO STDOUT"
	if as, bs := strings.Join(copyLines(t, ac, seqs), "\n"), strings.Join(copyLines(t, bc, seqs), "\n"); as != bs {
		t.Errorf("sequences differ:\nlogical twin:\n%s\ndump twin:\n%s", as, bs)
	}
}

func TestSlotSQLByVersion(t *testing.T) {
	for v, want := range map[int]bool{120017: false, 130000: true, 170002: true} {
		if got := strings.Contains(slotSQL(v), "wal_status"); got != want {
			t.Errorf("slotSQL(%d) reads wal_status: %v, want %v", v, got, want)
		}
	}
	for v, proto := range map[int]int{120017: 1, 130013: 1, 140000: 2, 160004: 2} {
		f := &follower{Publication: "pgtwin"}
		if a := f.pluginArgs(v); a.ProtoVersion != proto || a.Streaming != (proto == 2) || a.Messages != (proto == 2) {
			t.Errorf("pluginArgs(%d) = %+v", v, a)
		}
	}
}
