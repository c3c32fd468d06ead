package enginetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// minSize is the smallest image mkfs accepts per filesystem type; LoopFS
// raises smaller requests to it.
var minSize = map[string]int64{
	"btrfs": 120 << 20,
	"xfs":   320 << 20, // mkfs.xfs refuses filesystems under 300 MB
	"ext4":  16 << 20,
}

// LoopFS makes a filesystem of type fstype ("btrfs", "xfs" with reflink, or
// "ext4") on a sparse image of size bytes in t.TempDir(), mounts it through a
// loop device and returns the mountpoint. The filesystem is unmounted, the
// loop device detached and the image removed when the test ends, pass or fail.
// The path to the mountpoint is made traversable (0755) so PostgreSQL,
// running as the postgres user, can reach data directories inside it.
func LoopFS(t testing.TB, fstype string, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("loop filesystem %s: tests must run as root (mount, losetup)", fstype)
	}
	mkfs, args := "", []string(nil)
	switch fstype {
	case "btrfs":
		mkfs, args = "mkfs.btrfs", []string{"-q", "-f"}
	case "xfs":
		mkfs, args = "mkfs.xfs", []string{"-q", "-f", "-m", "reflink=1"}
	case "ext4":
		mkfs, args = "mkfs.ext4", []string{"-q", "-F"}
	default:
		t.Fatalf("loop filesystem: unknown type %q (want btrfs, xfs or ext4)", fstype)
	}
	if _, err := exec.LookPath(mkfs); err != nil {
		t.Fatalf("loop filesystem %s: %s not found (install %s): %v", fstype, mkfs, pkgOf[fstype], err)
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Fatalf("loop filesystem %s: losetup not found (install mount/util-linux): %v", fstype, err)
	}
	size = max(size, minSize[fstype])

	dir := t.TempDir()
	img := filepath.Join(dir, fstype+".img")
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatalf("loop filesystem: %v", err)
	}
	for p := dir; p != "/" && p != os.TempDir() && p != "."; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatalf("loop filesystem: %v", err)
		}
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatalf("loop filesystem: %v", err)
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		t.Fatalf("loop filesystem: sparse image: %v", err)
	}
	if out, err := run(mkfs, append(args, img)...); err != nil {
		t.Fatalf("loop filesystem: %s: %v: %s", mkfs, err, out)
	}
	out, err := run("losetup", "--find", "--show", img)
	if err != nil {
		t.Fatalf("loop filesystem %s: no loop device (is the loop module loaded, /dev/loop-control present?): %v: %s", fstype, err, out)
	}
	dev := strings.TrimSpace(out)
	// Registered before mounting so the device is detached even if mount fails.
	t.Cleanup(func() {
		if out, err := run("losetup", "-d", dev); err != nil {
			t.Errorf("loop filesystem cleanup: losetup -d %s: %v: %s", dev, err, out)
		}
	})
	if err := unix.Mount(dev, mnt, fstype, 0, ""); err != nil {
		t.Fatalf("loop filesystem: mount %s (%s) on %s: %v", dev, fstype, mnt, err)
	}
	if err := os.Chmod(mnt, 0o755); err != nil {
		t.Errorf("loop filesystem: %v", err)
	}
	t.Cleanup(func() {
		if err := Unmount(mnt); err != nil {
			t.Errorf("loop filesystem cleanup: %v", err)
		}
	})
	return mnt
}

var pkgOf = map[string]string{"btrfs": "btrfs-progs", "xfs": "xfsprogs", "ext4": "e2fsprogs"}

// Unmount unmounts mnt, retrying while it is busy (a process started by the
// test may take a moment to exit), then falls back to a lazy unmount.
func Unmount(mnt string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = unix.Unmount(mnt, 0)
		if err == nil || errors.Is(err, unix.EINVAL) { // EINVAL: not mounted
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lerr := unix.Unmount(mnt, unix.MNT_DETACH); lerr != nil {
		return fmt.Errorf("unmount %s: %v; lazy unmount: %v", mnt, err, lerr)
	}
	return nil
}

// Fill allocates a file in dir until the filesystem has at most leave bytes
// free, for disk-full tests. It uses fallocate, so it is fast and writes no
// data. The filler is returned so a test can remove it.
func Fill(t testing.TB, dir string, leave int64) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("fill filesystem: %v", err)
	}
	defer f.Close()
	var off int64
	chunk := int64(64 << 20)
	for chunk >= 4096 {
		if Free(t, dir) <= leave {
			break
		}
		n := min(chunk, Free(t, dir)-leave)
		n = max(n&^4095, 4096)
		err := unix.Fallocate(int(f.Fd()), 0, off, n)
		if err == nil {
			off += n
			continue
		}
		if !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("fill filesystem: fallocate: %v", err)
		}
		chunk /= 2
	}
	if err := f.Sync(); err != nil && !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("fill filesystem: %v", err)
	}
	unix.Sync()
	return p
}

// Free is the bytes available to an unprivileged writer in dir's filesystem.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * st.Bsize
}

func run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// FillMetadata creates empty files in dir until the filesystem refuses one
// with ENOSPC, after Fill has taken the data space: it uses up free inodes
// and metadata space, so even a metadata-only copy-on-write clone runs out.
// It returns how many files fit.
func FillMetadata(t testing.TB, dir string) int {
	t.Helper()
	d := filepath.Join(dir, "filler-meta")
	if err := os.MkdirAll(d, 0o700); err != nil && !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("fill metadata: %v", err)
	}
	for i := 0; i < 1_000_000; i++ {
		p := filepath.Join(d, fmt.Sprintf("%07d", i))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			if errors.Is(err, unix.ENOSPC) {
				unix.Sync()
				return i
			}
			t.Fatalf("fill metadata: %v", err)
		}
	}
	t.Fatalf("fill metadata: %s never ran out of space", dir)
	return 0
}

// FullFS is a small filesystem of type fstype (the smallest mkfs allows:
// 120 MB btrfs, 320 MB XFS, 16 MB ext4) filled up to leave bytes free, for
// tests of what happens when the data directory's disk is full. The filler
// file is at <mountpoint>/filler; remove it to free the space again.
func FullFS(t testing.TB, fstype string, leave int64) string {
	t.Helper()
	mnt := LoopFS(t, fstype, 0)
	Fill(t, mnt, leave)
	return mnt
}
