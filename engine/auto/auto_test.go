package auto

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/enginetest"
)

var ctx = context.Background()

func openAuto(t *testing.T, opts Options) (engine.Driver, string) {
	t.Helper()
	var logs bytes.Buffer
	opts.Logger = zerolog.New(&logs)
	d, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open(%+v): %v\nlogs: %s", opts, err, logs.String())
	}
	return d, logs.String()
}

func TestPicksBtrfsOnBtrfs(t *testing.T) {
	root := filepath.Join(enginetest.LoopFS(t, "btrfs", 0), "volumes")
	d, _ := openAuto(t, Options{Name: "auto", Root: root})
	if d.Name() != "btrfs" {
		t.Fatalf("auto on btrfs picked %s", d.Name())
	}
	if _, ok := d.(engine.AtomicSnapshotter); !ok {
		t.Fatal("btrfs driver is not an AtomicSnapshotter")
	}
}

func TestPicksReflinkOnXFS(t *testing.T) {
	root := filepath.Join(enginetest.LoopFS(t, "xfs", 0), "volumes")
	d, _ := openAuto(t, Options{Root: root}) // empty Name means auto
	if d.Name() != "reflink" {
		t.Fatalf("auto on xfs picked %s", d.Name())
	}
}

func TestPoolOnExt4(t *testing.T) {
	mnt := enginetest.LoopFS(t, "ext4", 512<<20)
	opts := Options{
		Name:          "auto",
		Root:          filepath.Join(mnt, "volumes"),
		PoolImage:     filepath.Join(mnt, "pool.img"),
		PoolImageSize: 1 << 30,
	}
	d, logs := openAuto(t, opts)
	t.Cleanup(func() {
		if err := enginetest.Unmount(opts.Root); err != nil {
			t.Error(err)
		}
	})
	if d.Name() != "btrfs" {
		t.Fatalf("auto on ext4 with a pool size picked %s; logs: %s", d.Name(), logs)
	}
	if !strings.Contains(logs, "created btrfs pool image") || !strings.Contains(logs, "mounted btrfs pool image") {
		t.Errorf("logs do not tell the pool was created and mounted: %s", logs)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(opts.Root, &st); err != nil || st.Type != unix.BTRFS_SUPER_MAGIC {
		t.Fatalf("volumes dir is not on btrfs after Open: type %#x, %v", st.Type, err)
	}
	var ist unix.Stat_t
	if err := unix.Stat(opts.PoolImage, &ist); err != nil {
		t.Fatal(err)
	}
	if ist.Blocks*512 >= ist.Size/4 {
		t.Errorf("pool image is not sparse: %d bytes allocated of %d", ist.Blocks*512, ist.Size)
	}
	if err := d.Create(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Path("main"), "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A second Open (daemon restart) while mounted reuses the pool.
	d2, logs := openAuto(t, opts)
	if d2.Name() != "btrfs" || strings.Contains(logs, "created") || strings.Contains(logs, "mounted") {
		t.Fatalf("second Open: driver %s, logs %s; want btrfs reusing the mounted pool", d2.Name(), logs)
	}
	// After a reboot the pool is not mounted: Open mounts the same image
	// again and does not reformat it.
	if err := Unmount(opts.Root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(opts.Root, "main")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume visible after unmounting the pool: %v", err)
	}
	d3, logs := openAuto(t, opts)
	if d3.Name() != "btrfs" || strings.Contains(logs, "created") || !strings.Contains(logs, "mounted btrfs pool image") {
		t.Fatalf("Open after unmount: driver %s, logs %s; want the pool mounted again, not created", d3.Name(), logs)
	}
	if b, err := os.ReadFile(filepath.Join(d3.Path("main"), "PG_VERSION")); err != nil || string(b) != "15\n" {
		t.Fatalf("volume lost across remount: %q, %v", b, err)
	}
	if err := d3.Clone(ctx, "main", "branch"); err != nil {
		t.Fatal(err)
	}
}

func TestCopyFallbackWarns(t *testing.T) {
	mnt := enginetest.LoopFS(t, "ext4", 64<<20)
	d, logs := openAuto(t, Options{Name: "auto", Root: filepath.Join(mnt, "volumes")})
	if d.Name() != "copy" {
		t.Fatalf("auto on ext4 without a pool picked %s", d.Name())
	}
	var warned bool
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"level":"warn"`) && strings.Contains(line, CopyWarning) && strings.Contains(line, `"filesystem":"ext4"`) {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("no warning naming the copy cost; logs:\n%s", logs)
	}
}

func TestExplicitDriverTheFilesystemCannotDo(t *testing.T) {
	ext4 := enginetest.LoopFS(t, "ext4", 64<<20)
	xfs := enginetest.LoopFS(t, "xfs", 0)
	for _, tc := range []struct {
		name, root, fs string
	}{
		{"btrfs", filepath.Join(xfs, "volumes"), "xfs"},
		{"btrfs", filepath.Join(ext4, "volumes"), "ext4"},
		{"reflink", filepath.Join(ext4, "volumes"), "ext4"},
	} {
		_, err := Open(ctx, Options{Name: tc.name, Root: tc.root, Logger: zerolog.Nop()})
		if !errors.Is(err, engine.ErrUnsupported) || !strings.Contains(err.Error(), tc.fs) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("driver %s on %s: %v; want ErrUnsupported naming both", tc.name, tc.fs, err)
		} else {
			t.Log(err)
		}
	}
	if _, err := Open(ctx, Options{Name: "zfs", Root: filepath.Join(ext4, "volumes"), Logger: zerolog.Nop()}); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("unknown driver name: %v", err)
	}
	// Explicit names that the filesystem can do.
	if d, _ := openAuto(t, Options{Name: "copy", Root: filepath.Join(xfs, "c")}); d.Name() != "copy" {
		t.Errorf("explicit copy gave %s", d.Name())
	}
	if d, _ := openAuto(t, Options{Name: "reflink", Root: filepath.Join(xfs, "r")}); d.Name() != "reflink" {
		t.Errorf("explicit reflink gave %s", d.Name())
	}
}

// The pool is never mounted over volumes a copy driver made earlier.
func TestPoolRefusesNonEmptyRoot(t *testing.T) {
	mnt := enginetest.LoopFS(t, "ext4", 64<<20)
	root := filepath.Join(mnt, "volumes")
	if err := os.MkdirAll(filepath.Join(root, "old-volume"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, Options{Root: root, PoolImage: filepath.Join(mnt, "pool.img"), PoolImageSize: 1 << 30, Logger: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("pool over a non-empty volumes dir: %v", err)
	}
	t.Log(err)
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		t.Fatalf("volumes dir changed filesystem: %#x, %v", st.Type, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "pool.img")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused pool left an image: %v", err)
	}
}
