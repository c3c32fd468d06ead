package engine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A sync that dies on PostgreSQL's disk_full error is reported as the disk
// being full even when free space has come back by the time we look (the
// failed run's files are removed first).
func TestDiskFullNamesTheCause(t *testing.T) {
	dir := t.TempDir()
	noLog := filepath.Join(dir, "missing.log")
	full := fmt.Errorf("sync step copy: table %q: %w", "public.events",
		&pgconn.PgError{Code: "53100", Message: `could not extend file "base/1/2": wrote only 4096 of 8192 bytes`})
	if err := diskFull(full, dir, -1, noLog); !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("disk_full error: got %v, want it named as no space left", err)
	}
	// Only the text survived (an error flattened on the way): still recognised.
	flat := errors.New(`sync step copy: ERROR: could not extend file "base/1/2" (SQLSTATE 53100)`)
	if err := diskFull(flat, dir, -1, noLog); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("flattened disk_full error: got %v", err)
	}
	// Any other failure on a roomy disk is left as it is.
	other := &pgconn.PgError{Code: "23505", Message: "duplicate key"}
	if err := diskFull(other, dir, -1, noLog); errors.Is(err, ErrNoSpace) {
		t.Fatalf("unique violation reported as a full disk: %v", err)
	}
}

// The common way a fill dies of a full pool: the target PANICs on a WAL
// write and the sync sees only a dropped connection; by the time we look,
// the failed WAL segment is gone and there is room again. The lowest free
// space seen during the fill still names the cause. A real (tmpfs)
// filesystem is filled and emptied under the watch.
func TestDiskFullSeenWhileTheFillRan(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tmpfs: run it as root (make test does)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	noLog := filepath.Join(t.TempDir(), "missing.log")
	dropped := errors.New("sync step copy: table \"public\".\"events\": write failed: use of closed network connection")

	// A fill that never came near the end of the disk: left as it is.
	w := watchFree(dir, noLog)
	if err := w.Done(dropped); errors.Is(err, ErrNoSpace) {
		t.Fatalf("a dropped connection on a roomy disk reported as a full disk: %v", err)
	}

	w = watchFree(dir, noLog)
	f, err := os.Create(filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: got %v, want ENOSPC", err)
	}
	time.Sleep(5 * freeSampleEvery)
	f.Close()
	os.Remove(f.Name()) // PostgreSQL unlinks the segment it could not write
	low := w.stop()
	if free, _, _ := freeSpace(dir); free < 16<<20 {
		t.Fatalf("the tmpfs has %d bytes free after the file is gone; the test needs the space back", free)
	}
	err = diskFull(dropped, dir, low, noLog)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "at the lowest during the sync") {
		t.Fatalf("a fill that ran the disk out: got %v (lowest free seen %d), want no space left", err, low)
	}
	if !strings.Contains(err.Error(), "use of closed network connection") {
		t.Fatalf("the original error is lost: %v", err)
	}
}
