package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/internal/units"
)

// A fill that runs the pool out of space rarely fails with a tidy error:
// PostgreSQL PANICs on a WAL write, the filler only sees its connection
// drop, the PANIC cannot be logged on the full disk, and the WAL segment
// that failed is unlinked, so free space has come back by the time we look.
// So the cause is judged on several signals, any one of which is enough:
// PostgreSQL's own disk_full error, free space now, the lowest free space
// seen while the fill ran, and the instance's server log.

// SpaceWatch samples the free space of a volume's filesystem while
// something fills the volume's instance, and names a full disk as the cause
// when the fill fails. Make one with WatchSpace and end it with Done.
type SpaceWatch struct {
	dir     string
	logPath string
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	low     int64 // -1 until a sample is taken
}

// freeSampleEvery is short enough that a copy running at a few hundred MB/s
// is seen within a few MB of the end of the disk.
const freeSampleEvery = 20 * time.Millisecond

// PoolSpace is the free (for unprivileged writers, as postgres is) and
// total size of the filesystem that holds the volumes.
func (e *Engine) PoolSpace() (free, total int64, ok bool) {
	return freeSpace(filepath.Dir(e.drv.Path("x")))
}

// WatchSpace starts watching the filesystem that holds volume id, whose
// instance is about to be filled.
func (e *Engine) WatchSpace(id string) *SpaceWatch {
	return watchFree(filepath.Dir(e.drv.Path(id)), e.LogPath(id))
}

// Done ends the watch. It runs before the half-filled volume is removed and
// frees the space: a failed fill's err comes back wrapped in ErrNoSpace
// when the disk ran full, unchanged otherwise.
func (w *SpaceWatch) Done(err error) error {
	return diskFull(err, w.dir, w.stop(), w.logPath)
}

func watchFree(dir, logPath string) *SpaceWatch {
	w := &SpaceWatch{dir: dir, logPath: logPath, done: make(chan struct{}), low: -1}
	w.sample()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(freeSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-t.C:
				w.sample()
			}
		}
	}()
	return w
}

func (w *SpaceWatch) sample() {
	free, _, ok := freeSpace(w.dir)
	if !ok {
		return
	}
	w.mu.Lock()
	if w.low < 0 || free < w.low {
		w.low = free
	}
	w.mu.Unlock()
}

// stop ends the sampling and returns the lowest free space seen, or -1.
func (w *SpaceWatch) stop() int64 {
	close(w.done)
	w.wg.Wait()
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.low
}

func freeSpace(dir string) (free, total int64, ok bool) {
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil || fs.Blocks == 0 {
		return 0, 0, false
	}
	return int64(fs.Bavail) * fs.Bsize, int64(fs.Blocks) * fs.Bsize, true
}

// diskFull names a full filesystem at dir as the cause of a failed fill.
// lowFree is the lowest free space seen during the fill (-1: unknown).
func diskFull(err error, dir string, lowFree int64, serverLog string) error {
	if err == nil || errors.Is(err, ErrNoSpace) {
		return err
	}
	free, total, ok := freeSpace(dir)
	if !ok {
		return err
	}
	// The sampled low can lag the true one by a sample's worth of writes
	// (and btrfs keeps back metadata space): allow more slack there.
	nowFull := free <= min(total/50, 64<<20)
	ranFull := lowFree >= 0 && lowFree <= min(total/20, 256<<20)
	if !nowFull && !ranFull && !isDiskFullError(err) && !logSaysNoSpace(serverLog) {
		return err
	}
	low := ""
	if lowFree >= 0 && lowFree < free {
		low = fmt.Sprintf(" (%s at the lowest during the sync)", units.IEC(lowFree))
	}
	return fmt.Errorf("%w: %s has %s free of %s%s; free space (delete branches or snapshots) or grow it, then sync again: %w",
		ErrNoSpace, dir, units.IEC(free), units.IEC(total), low, err)
}

// sqlstateDiskFull (53100) is the one SQLSTATE the engine reads: a fill
// that ran the pool out of space is named as such, whoever filled it.
const sqlstateDiskFull = pgerrcode.DiskFull

// isDiskFullError reports whether PostgreSQL itself said the disk is full
// (SQLSTATE 53100, e.g. "could not extend file").
func isDiskFullError(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == sqlstateDiskFull {
		return true
	}
	return strings.Contains(err.Error(), "(SQLSTATE "+sqlstateDiskFull+")")
}

// logSaysNoSpace reports whether the tail of a server log has an ENOSPC
// error. Only the fact is used: the log's lines are never passed on.
func logSaysNoSpace(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	const tail = 256 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > tail {
		f.Seek(fi.Size()-tail, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, tail))
	return bytes.Contains(b, []byte("No space left on device"))
}
