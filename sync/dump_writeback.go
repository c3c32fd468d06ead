package twinsync

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// The fill writes with fsync off, so a big table's pages sit dirty in the
// page cache until endFill's syncfs writes them all, alone on the machine
// at the very end (2-5 s for the 1.4 GB bench source). With
// writebackOn, the indexer asks the kernel to start writing a big table's
// files back as soon as they are written no more: the heap once its copy
// has committed, the indexes once built (sync_file_range
// SYNC_FILE_RANGE_WRITE: start, do not wait), while other tables still
// copy or build. The final syncfs is still what makes the main durable; it
// just finds less left to write.

// writeback starts the kernel's writeback of the files of tables (target
// qnames): heap, TOAST and indexes, every segment and fork. A failure only
// costs the overlap, so it is logged, never returned.
type writeback struct {
	r   *run
	dir string // the target's data directory

	wg sync.WaitGroup
}

// writebackOn: measured with PGTWIN_BENCH_AB=writeback (1.4 GB bench
// source, parallel 2, 2 cores, the twin on a loop-mounted btrfs, 3 rounds
// alternating) the sync took 28.3, 35.5, 30.4 s with it against 33.8,
// 43.7, 32.4 s without: endFill's syncfs fell from 4.8-5.3 s to 0.03-1.8 s
// while post-data grew by 0-2.3 s (the writeback's I/O and btrfs's
// checksums run beside the CPU-bound tail instead of after it).
var writebackOn = true

// startWriteback is nil when the target's data directory cannot be read
// (a target on another host): then endFill's syncfs does it all.
func (r *run) startWriteback(ctx context.Context) *writeback {
	if !writebackOn {
		return nil
	}
	var dir string
	if err := r.tgtConn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
		return nil
	}
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	return &writeback{r: r, dir: dir}
}

// tables starts the writeback of the files of the tables with these
// qnames, their TOAST and every index of either, in the background; conn
// reads their paths from the target.
func (wb *writeback) tables(ctx context.Context, conn *pgx.Conn, qnames []string) {
	if wb == nil || len(qnames) == 0 {
		return
	}
	rows, err := conn.Query(ctx, `WITH t AS (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.oid = ANY($1::text[]::regclass[])
			UNION SELECT c.reltoastrelid FROM pg_catalog.pg_class c WHERE c.oid = ANY($1::text[]::regclass[]) AND c.reltoastrelid <> 0)
		SELECT p FROM (SELECT pg_catalog.pg_relation_filepath(oid) FROM t
			UNION ALL SELECT pg_catalog.pg_relation_filepath(i.indexrelid) FROM pg_catalog.pg_index i JOIN t ON i.indrelid = t.oid) f(p)
		WHERE p IS NOT NULL`, qnames)
	if err == nil {
		var paths []string
		if paths, err = pgx.CollectRows(rows, pgx.RowTo[string]); err == nil {
			wb.start(qnames, paths)
			return
		}
	}
	wb.r.log.Debug().Err(redact(err)).Msg("writeback not started: relation files not read")
}

// files lists the relation files (every segment and fork) of paths, which
// are relative to the data directory as pg_relation_filepath gives them.
func (wb *writeback) files(paths []string) []string {
	var out []string
	for _, p := range paths {
		base := filepath.Join(wb.dir, p)
		m, _ := filepath.Glob(base + ".*")
		fk, _ := filepath.Glob(base + "_*")
		out = append(out, base)
		out = append(out, m...)
		out = append(out, fk...)
	}
	return out
}

// start asks the kernel to write back files, in the background.
func (wb *writeback) start(what []string, paths []string) {
	files := wb.files(paths)
	wb.wg.Go(func() {
		begin := time.Now()
		var n int64
		for _, f := range files {
			fd, err := unix.Open(f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // a fork that does not exist, or a file dropped since
			}
			var st unix.Stat_t
			if unix.Fstat(fd, &st) == nil {
				n += st.Size
			}
			if err := unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE); err != nil {
				wb.r.log.Debug().Err(err).Msg("writeback not started")
			}
			unix.Close(fd)
		}
		wb.r.log.Debug().Strs("tables", what).Int("files", len(files)).Int64(logkey.Bytes, n).
			Dur(logkey.Duration, time.Since(begin)).Msg("writeback started")
	})
}

// wait waits for the writeback requests to be issued (not for the writes).
func (wb *writeback) wait() {
	if wb != nil {
		wb.wg.Wait()
	}
}
