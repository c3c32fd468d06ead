package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/internal/sample"
	"github.com/pgtwin/pgtwin/twin/api"
)

// TestBenchBranchAt (PGTWIN_BENCH=1) is issue 16's benchmark: in logical
// mode with snapshots.pitr_window, PGTWIN_BENCH_PITR_SECONDS (default 60)
// of source load at PGTWIN_BENCH_TPS (default 1000) single-row
// transactions a second after a snapshot; then the wall time of `branches
// create --at` the load's end (recovering all of it from the archive) and
// of `branches create --parent` that snapshot, PGTWIN_BENCH_RUNS (3) each;
// and the archive the load wrote, per hour by extrapolation.
func TestBenchBranchAt(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1 to run it")
	}
	secs := envInt("PGTWIN_BENCH_PITR_SECONDS", 60)
	tps := envInt("PGTWIN_BENCH_TPS", 1000)
	runs := envInt("PGTWIN_BENCH_RUNS", 3)

	src := pgtest.Start(t, pgtest.Options{Logical: true, Databases: []string{"shop"}})
	src.Exec(t, "shop", sample.Luhn+sample.Schema)
	src.Exec(t, "shop", sample.Data(200))
	src.Exec(t, "shop", "CREATE TABLE load (id bigint PRIMARY KEY, n int)")
	key := filepath.Join(t.TempDir(), "mask.key")
	cfg := strings.Replace(syncConfig(t, src, key, syncOpts{}), `mode = "dump"`, `mode = "logical"`, 1)
	cfg += "\n[snapshots]\npitr_window = \"1d\"\n"
	d := startDaemon(t, daemonOpts{Driver: "btrfs", ImageSize: 12 << 30, Extra: cfg})
	d.waitStreaming(t, 3*time.Minute)
	base := d.snapshotNow(t)
	archive := archiveDir(t, d)
	segsBefore := len(segments(t, archive))
	const walPos = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
	walBefore := d.mainQueryInt(t, walPos)

	// The load: 4 connections, each paced to tps/4 transactions a second.
	ctx := context.Background()
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	began := time.Now()
	for w := 0; w < workers; w++ {
		conn, err := pgx.Connect(ctx, src.ConnString("shop"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		wg.Add(1)
		go func(w int, conn *pgx.Conn) {
			defer wg.Done()
			every := time.Second * workers / time.Duration(tps)
			for k := 0; k < secs*tps/workers; k++ {
				time.Sleep(time.Until(began.Add(time.Duration(k) * every)))
				if _, err := conn.Exec(ctx, "INSERT INTO load VALUES ($1, $2)", int64(k*workers+w), k); err != nil {
					errs <- err
					return
				}
			}
		}(w, conn)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("load: %v", err)
	}
	loadTook := time.Since(began)
	total := int64(secs * tps / workers * workers)
	end := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(end) + 200*time.Millisecond)
	src.Exec(t, "shop", "INSERT INTO load VALUES (-1, 0)") // a transaction after the end
	eventually(t, 5*time.Minute, "main has the load", func() bool {
		return d.mainQueryInt(t, "SELECT count(*) FROM load") == total+1
	})
	walBytes := d.mainQueryInt(t, walPos) - walBefore

	var ats, plains []time.Duration
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		r := d.must(root, "branches", "create", fmt.Sprintf("bench/at%d", i), "--at", end.UTC().Format(time.RFC3339), "-o", "json")
		ats = append(ats, time.Since(t0))
		b := decode[api.Branch](t, r)
		if b.AtExact == nil || !*b.AtExact {
			t.Fatalf("--at not exact: %s", r)
		}
		if n := queryInt(t, b.ConnectionURI, "SELECT count(*) FROM load"); n != total {
			t.Fatalf("--at branch holds %d rows, want %d", n, total)
		}
		t0 = time.Now()
		d.must(root, "branches", "create", fmt.Sprintf("bench/snap%d", i), "--parent", base)
		plains = append(plains, time.Since(t0))
		d.must(root, "branches", "delete", fmt.Sprintf("bench/at%d", i))
		d.must(root, "branches", "delete", fmt.Sprintf("bench/snap%d", i))
	}
	// Each --at switches main to a new segment (16 MiB archived whatever
	// it holds); the load's own share is its WAL, in whole segments.
	segs := len(segments(t, archive)) - segsBefore
	perHour := float64(walBytes) * float64(time.Hour) / float64(loadTook)
	var sb strings.Builder
	fmt.Fprintf(&sb, "\npgtwin branches --at: %d s of load at %d tx/s (took %s), %d transactions\n", secs, tps, loadTook.Round(time.Millisecond), total)
	fmt.Fprintf(&sb, "  main's WAL over the load:          %d MiB\n", walBytes>>20)
	fmt.Fprintf(&sb, "  archive per hour at this rate (extrapolated from the load's WAL): %.2f GiB (%d segments)\n", perHour/(1<<30), int64(perHour)>>24+1)
	fmt.Fprintf(&sb, "  segments archived in the run: %d (the load's, plus one per --at: each switches main's segment)\n", segs)
	fmt.Fprintf(&sb, "  create --at the load's end (replays it): median %s, max %s\n", median(ats).Round(time.Millisecond), slices.Max(ats).Round(time.Millisecond))
	fmt.Fprintf(&sb, "  create --parent the snapshot before:    median %s, max %s\n", median(plains).Round(time.Millisecond), slices.Max(plains).Round(time.Millisecond))
	t.Log(sb.String())
	fmt.Fprint(os.Stderr, sb.String())
}
