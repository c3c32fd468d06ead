package auto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/btrfs"
	copydrv "github.com/pgtwin/pgtwin/engine/copy"
	"github.com/pgtwin/pgtwin/engine/internal/tree"
	"github.com/pgtwin/pgtwin/engine/reflink"
	"github.com/pgtwin/pgtwin/internal/logkey"
)

// Options say which driver to open and where.
type Options struct {
	// Name is "auto" (or empty), "btrfs", "reflink" or "copy".
	Name string
	// Root is the volumes directory, created if missing.
	Root string
	// PoolImage is the path of the btrfs pool image file.
	PoolImage string
	// PoolImageSize is the pool image's size in bytes; 0 disables the pool.
	PoolImageSize int64
	Logger        zerolog.Logger
}

// CopyWarning is logged when auto falls back to the copy driver.
const CopyWarning = "copy driver: every branch costs a full copy of the data (O(size))"

// Open opens the driver opts ask for. An explicit driver the filesystem
// cannot do is an error wrapping engine.ErrUnsupported that names both.
func Open(ctx context.Context, opts Options) (engine.Driver, error) {
	log := opts.Logger.With().Str(logkey.Component, "storage").Logger()
	if opts.Root == "" {
		return nil, errors.New("storage driver: no volumes directory")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("storage driver: %w", err)
	}
	fs, magic, err := tree.FSType(root)
	if err != nil {
		return nil, fmt.Errorf("storage driver: %w", err)
	}
	name := opts.Name
	if name == "" {
		name = "auto"
	}
	d, err := open(ctx, name, root, fs, magic, opts, log)
	if err != nil {
		return nil, err
	}
	fs, _, _ = tree.FSType(root)
	log.Info().Str(logkey.Driver, d.Name()).Str(logkey.Filesystem, fs).Str(logkey.Path, root).Msg("storage driver ready")
	return d, nil
}

func open(ctx context.Context, name, root, fs string, magic int64, opts Options, log zerolog.Logger) (engine.Driver, error) {
	canPool := opts.PoolImageSize > 0 && os.Geteuid() == 0
	switch name {
	case btrfs.Name:
		if magic != unix.BTRFS_SUPER_MAGIC {
			if !canPool {
				return nil, fmt.Errorf("engine.driver btrfs: %s is on %s, not btrfs (set engine.pool_image_size, as root, for a btrfs pool image): %w", root, fs, engine.ErrUnsupported)
			}
			if err := mountPool(ctx, root, fs, opts, log); err != nil {
				return nil, err
			}
		}
		return btrfs.Open(ctx, root, log)
	case reflink.Name:
		d, err := reflink.Open(ctx, root, log)
		if err != nil {
			return nil, fmt.Errorf("engine.driver reflink: %w", err) // names root and filesystem
		}
		return d, nil
	case copydrv.Name:
		return copydrv.Open(ctx, root, log)
	case "auto":
	default:
		return nil, fmt.Errorf("engine.driver %q: unknown (want auto, btrfs, reflink or copy)", name)
	}

	if magic == unix.BTRFS_SUPER_MAGIC {
		return btrfs.Open(ctx, root, log)
	}
	if err := reflink.Probe(root); err == nil {
		return reflink.Open(ctx, root, log)
	} else if !errors.Is(err, engine.ErrUnsupported) {
		return nil, fmt.Errorf("storage driver: %w", err)
	}
	if canPool {
		if err := mountPool(ctx, root, fs, opts, log); err != nil {
			return nil, err
		}
		return btrfs.Open(ctx, root, log)
	}
	hint := "put daemon.data_dir on btrfs or XFS, or set engine.pool_image_size"
	if opts.PoolImageSize > 0 {
		hint = "the btrfs pool image needs the daemon to run as root"
	}
	log.Warn().Str(logkey.Driver, copydrv.Name).Str(logkey.Filesystem, fs).Str(logkey.Path, root).
		Str("hint", hint).Msg(CopyWarning)
	return copydrv.Open(ctx, root, log)
}

// mountPool loop-mounts the btrfs pool image on root, creating and
// formatting the image first if it does not exist yet.
func mountPool(ctx context.Context, root, fs string, opts Options, log zerolog.Logger) error {
	img := opts.PoolImage
	if img == "" {
		return errors.New("btrfs pool: engine.pool_image_size is set but no pool image path")
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("btrfs pool: %w", err)
	}
	if len(entries) > 0 {
		// Mounting over volumes would hide them from the engine.
		return fmt.Errorf("btrfs pool: %s on %s is not empty (%d entries, e.g. %s); move its volumes away or unset engine.pool_image_size",
			root, fs, len(entries), entries[0].Name())
	}
	if _, err := os.Stat(img); errors.Is(err, os.ErrNotExist) {
		if err := createPool(ctx, img, opts.PoolImageSize, log); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("btrfs pool: %w", err)
	}
	if out, err := run(ctx, "mount", "-o", "loop,noatime", img, root); err != nil {
		return fmt.Errorf("btrfs pool: mount %s on %s: %w: %s", img, root, err, out)
	}
	log.Info().Str(logkey.Path, img).Str("mountpoint", root).Msg("mounted btrfs pool image")
	return nil
}

// createPool makes the image under a temporary name and renames it when
// formatted, so a crash never leaves an unformatted image that a later start
// would try to mount.
func createPool(ctx context.Context, img string, size int64, log zerolog.Logger) error {
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		return fmt.Errorf("btrfs pool: mkfs.btrfs not found (install btrfs-progs): %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(img), 0o700); err != nil {
		return fmt.Errorf("btrfs pool: %w", err)
	}
	tmp := img + ".new"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("btrfs pool: %w", err)
	}
	err = f.Truncate(size) // sparse: costs nothing until used
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("btrfs pool: size image: %w", tree.WrapNoSpace(err))
	}
	if out, err := run(ctx, "mkfs.btrfs", "-q", "-L", "pgtwin-pool", tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("btrfs pool: mkfs.btrfs %s: %w: %s", tmp, err, out)
	}
	if err := os.Rename(tmp, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("btrfs pool: %w", err)
	}
	log.Info().Str(logkey.Path, img).Int64(logkey.Bytes, size).Msg("created btrfs pool image")
	return nil
}

// Unmount unmounts a pool mounted on root (the loop device goes with it).
// The daemon does not call it: the pool stays mounted between runs.
func Unmount(root string) error {
	if err := unix.Unmount(root, 0); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return nil // not a mountpoint
		}
		return fmt.Errorf("unmount btrfs pool %s: %w", root, err)
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}
