package reflink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/internal/tree"
	"github.com/pgtwin/pgtwin/internal/logkey"
)

// Name is the driver's name in config and logs.
const Name = "reflink"

// Driver keeps volumes as directories and copies them with FICLONE.
type Driver struct {
	store *tree.Store
	log   zerolog.Logger
}

var (
	_ engine.Driver = (*Driver)(nil)
	_ engine.Lister = (*Driver)(nil)
	_ treeCloner    = (*Driver)(nil)
)

// treeCloner is engine.TreeCloner, spelled out so this package does not
// depend on when the engine declares it.
type treeCloner interface {
	CloneTree(ctx context.Context, srcDir, dstDir string) error
}

// Open uses root (created if missing). It fails with engine.ErrUnsupported
// when the filesystem cannot FICLONE.
func Open(_ context.Context, root string, log zerolog.Logger) (*Driver, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("reflink driver: %w", err)
	}
	if err := Probe(root); err != nil {
		return nil, fmt.Errorf("reflink driver: %w", err)
	}
	s, removed, err := tree.OpenStore(root)
	log = log.With().Str(logkey.Driver, Name).Logger()
	for _, name := range removed {
		log.Warn().Str(logkey.Path, filepath.Join(root, ".staging", name)).Msg("removed a half-made or half-deleted volume left by a crash")
	}
	if err != nil {
		return nil, fmt.Errorf("reflink driver: %w", err)
	}
	return &Driver{store: s, log: log}, nil
}

// Probe clones a small file inside dir and removes it again, leaving dir as
// it was. The error wraps engine.ErrUnsupported and names the filesystem
// when FICLONE does not work there.
func Probe(dir string) error {
	src, err := os.CreateTemp(dir, ".reflink-probe-")
	if err != nil {
		return err
	}
	defer os.Remove(src.Name())
	defer src.Close()
	if _, err := src.Write([]byte("pgtwin reflink probe\n")); err != nil {
		return tree.WrapNoSpace(err)
	}
	dst, err := os.CreateTemp(dir, ".reflink-probe-")
	if err != nil {
		return err
	}
	defer os.Remove(dst.Name())
	defer dst.Close()
	if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err != nil {
		fs, _, _ := tree.FSType(dir)
		return fmt.Errorf("FICLONE on %s (%s): %w: %w", dir, fs, engine.ErrUnsupported, err)
	}
	return nil
}

// cloneFile is the FileCopier: one FICLONE shares all of src's extents.
var cloneFile = tree.Reflink

// Name implements engine.Driver.
func (d *Driver) Name() string { return Name }

// Path implements engine.Driver.
func (d *Driver) Path(id string) string { return d.store.Path(id) }

// Create implements engine.Driver.
func (d *Driver) Create(ctx context.Context, id string) error { return d.store.Create(ctx, id) }

// Snapshot implements engine.Driver: a FICLONE copy marked read-only.
func (d *Driver) Snapshot(ctx context.Context, src, id string) error {
	return d.store.Make(ctx, src, id, true, cloneFile)
}

// Clone implements engine.Driver.
func (d *Driver) Clone(ctx context.Context, src, id string) error {
	return d.store.Make(ctx, src, id, false, cloneFile)
}

// Destroy implements engine.Driver.
func (d *Driver) Destroy(ctx context.Context, id string) error { return d.store.Destroy(ctx, id) }

// List implements engine.Lister.
func (d *Driver) List(ctx context.Context) ([]string, error) { return d.store.List(ctx) }

// ReadOnly reports whether volume id is a snapshot.
func (d *Driver) ReadOnly(id string) bool { return d.store.ReadOnly(id) }

// CloneTree copies the directory tree srcDir onto dstDir with FICLONE, both
// on the driver's filesystem. dstDir is created if missing; if it exists,
// files from srcDir replace entries of the same name and other entries stay.
// A source file that vanishes during the copy is skipped. On error dstDir
// may be partly written.
func (d *Driver) CloneTree(ctx context.Context, srcDir, dstDir string) error {
	if err := tree.Copy(ctx, srcDir, dstDir, cloneFile); err != nil {
		return fmt.Errorf("clone tree %s to %s: %w", srcDir, dstDir, tree.WrapNoSpace(err))
	}
	return nil
}

// Usage implements engine.Driver; see the package doc for the method.
func (d *Driver) Usage(ctx context.Context, id string) (engine.Usage, error) {
	if err := tree.ValidID(id); err != nil {
		return engine.Usage{}, fmt.Errorf("usage: %w", err)
	}
	p := d.Path(id)
	if _, err := os.Lstat(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return engine.Usage{}, fmt.Errorf("usage %s: %w", id, engine.ErrNotFound)
		}
		return engine.Usage{}, fmt.Errorf("usage %s: %w", id, err)
	}
	u := engine.Usage{Method: "fiemap"}
	err := tree.WalkFiles(ctx, p, func(path string, st *unix.Stat_t) error {
		u.TotalBytes += st.Size
		excl, err := exclusiveBytes(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		u.ExclusiveBytes += excl
		return nil
	})
	if err != nil {
		return engine.Usage{}, fmt.Errorf("usage %s: %w", id, err)
	}
	return u, nil
}

// Root is the directory holding the volumes.
func (d *Driver) Root() string { return filepath.Clean(d.store.Root()) }
