package enginetest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLoopFS(t *testing.T) {
	magic := map[string]int64{"btrfs": unix.BTRFS_SUPER_MAGIC, "xfs": unix.XFS_SUPER_MAGIC, "ext4": unix.EXT4_SUPER_MAGIC}
	for _, fs := range []string{"btrfs", "xfs", "ext4"} {
		t.Run(fs, func(t *testing.T) {
			var mnt string
			t.Run("mount", func(t *testing.T) {
				mnt = LoopFS(t, fs, 512<<20)
				var st unix.Statfs_t
				if err := unix.Statfs(mnt, &st); err != nil {
					t.Fatal(err)
				}
				if st.Type != magic[fs] {
					t.Fatalf("statfs type %#x, want %#x", st.Type, magic[fs])
				}
				if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			})
			// The subtest's cleanup has run: the mountpoint must be gone or
			// no longer a mount.
			var st unix.Statfs_t
			if err := unix.Statfs(mnt, &st); err == nil && st.Type == magic[fs] && fs != "ext4" {
				t.Fatalf("%s still mounted at %s after the test ended", fs, mnt)
			}
		})
	}
}

func TestFill(t *testing.T) {
	mnt := LoopFS(t, "btrfs", 200<<20)
	Fill(t, mnt, 1<<20)
	if free := Free(t, mnt); free > 1<<20 {
		t.Fatalf("after Fill %d bytes free, want at most 1 MiB", free)
	}
	err := os.WriteFile(filepath.Join(mnt, "big"), make([]byte, 8<<20), 0o600)
	if err == nil {
		t.Fatal("writing 8 MiB to a filled filesystem succeeded")
	}
}

func TestFullFS(t *testing.T) {
	for _, fs := range []string{"btrfs", "xfs", "ext4"} {
		t.Run(fs, func(t *testing.T) {
			mnt := FullFS(t, fs, 0)
			err := os.WriteFile(filepath.Join(mnt, "f"), make([]byte, 1<<20), 0o600)
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("writing 1 MiB on a full %s: %v, want ENOSPC", fs, err)
			}
			if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
				t.Fatal(err)
			}
			unix.Sync()
			if err := os.WriteFile(filepath.Join(mnt, "g"), make([]byte, 1<<20), 0o600); err != nil {
				t.Fatalf("writing after removing the filler: %v", err)
			}
		})
	}
}
