package twinsync

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// TestBenchCopyFormat times one pass-through table (pgbench_accounts, scale
// PGTWIN_BENCH_SCALE, default 68) copied source COPY TO → target COPY FROM
// FREEZE as the dump sync's workers copy it, in COPY text and in binary,
// alternating, with the CPU each server backend and this process spent.
// The target runs as a twin's fill does (wal_level minimal, fsync off).
func TestBenchCopyFormat(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1")
	}
	ctx := context.Background()
	scale := envInt("PGTWIN_BENCH_SCALE", 68)
	rounds := envInt("PGTWIN_BENCH_ROUNDS", 3)
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}, Settings: map[string]string{"shared_buffers": "256MB"}})
	tgt := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}, Settings: map[string]string{
		"wal_level": "minimal", "max_wal_senders": "0", "full_page_writes": "off", "autovacuum": "off",
		"synchronous_commit": "off", "shared_buffers": "128MB", "max_wal_size": "4GB",
	}})
	runCmd(t, filepath.Join(src.Bin, "pgbench"), "-i", "-q", "-I", "dtg", "-s", strconv.Itoa(scale), src.ConnString("app"))
	src.Exec(t, "app", "VACUUM ANALYZE pgbench_accounts")
	src.Exec(t, "app", "SELECT count(*) FROM pgbench_accounts")
	tgt.Exec(t, "app", "CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84))")

	sc, tc := src.Connect(t, "app"), tgt.Connect(t, "app")
	cpu := func(c *pgx.Conn) time.Duration {
		var pid int
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return procCPU(t, pid)
	}
	one := func(binary bool) (wall, scpu, tcpu, self time.Duration, n int64) {
		out, in := "COPY pgbench_accounts (aid, bid, abalance, filler) TO STDOUT", "COPY pgbench_accounts (aid, bid, abalance, filler) FROM STDIN WITH (FREEZE)"
		if binary {
			out, in = out+" (FORMAT binary)", strings.Replace(in, "(FREEZE)", "(FORMAT binary, FREEZE)", 1)
		}
		s0, t0, g0 := cpu(sc), cpu(tc), selfCPU(t)
		begin := time.Now()
		if _, err := tc.Exec(ctx, "BEGIN; TRUNCATE pgbench_accounts"); err != nil {
			t.Fatal(err)
		}
		pr, pw := io.Pipe()
		mw := &maskWriter{w: pw, p: &progress{}}
		if binary {
			mw.bin = newBinaryCounter(4)
		}
		go func() {
			_, err := sc.PgConn().CopyTo(ctx, mw, out)
			if err == nil {
				err = mw.finish()
			}
			pw.CloseWithError(err)
		}()
		if _, err := tc.PgConn().CopyFrom(ctx, pr, in); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
		wall = time.Since(begin)
		if mw.rows != int64(scale)*100000 {
			t.Fatalf("%d rows counted, want %d", mw.rows, scale*100000)
		}
		return wall, cpu(sc) - s0, cpu(tc) - t0, selfCPU(t) - g0, mw.bytes
	}
	for round := range rounds {
		for i, binary := range []bool{round%2 == 0, round%2 != 0} {
			_ = i
			w, s, tg, g, n := one(binary)
			name := "text"
			if binary {
				name = "binary"
			}
			fmt.Printf("round %d %-6s wall %6.2fs  source backend %6.2fs  target backend %6.2fs  pgtwin %5.2fs  %4d MB  load %s\n",
				round+1, name, w.Seconds(), s.Seconds(), tg.Seconds(), g.Seconds(), n>>20, loadavg())
		}
	}
}

// procCPU is the user+system CPU time process pid has used.
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond // USER_HZ 100
}

func selfCPU(t *testing.T) time.Duration { return procCPU(t, os.Getpid()) }
