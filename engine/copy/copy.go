package copydrv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/internal/tree"
	"github.com/pgtwin/pgtwin/internal/logkey"
)

// Name is the driver's name in config and logs.
const Name = "copy"

// Driver keeps volumes as directories and copies them byte by byte.
type Driver struct {
	store *tree.Store
	log   zerolog.Logger
}

// treeCloner is engine.TreeCloner, spelled out so this package does not
// depend on when the engine declares it.
type treeCloner interface {
	CloneTree(ctx context.Context, srcDir, dstDir string) error
}

var (
	_ engine.Driver = (*Driver)(nil)
	_ engine.Lister = (*Driver)(nil)
	_ treeCloner    = (*Driver)(nil)
)

// Open uses root (created if missing) on any filesystem.
func Open(_ context.Context, root string, log zerolog.Logger) (*Driver, error) {
	s, removed, err := tree.OpenStore(root)
	log = log.With().Str(logkey.Driver, Name).Logger()
	for _, name := range removed {
		log.Warn().Str(logkey.Path, filepath.Join(root, ".staging", name)).Msg("removed a half-made or half-deleted volume left by a crash")
	}
	if err != nil {
		return nil, fmt.Errorf("copy driver: %w", err)
	}
	s.SyncData = true
	return &Driver{store: s, log: log}, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// onlyWriter hides (*os.File).ReadFrom so io.CopyBuffer really reads and
// writes instead of using copy_file_range.
type onlyWriter struct{ io.Writer }

// onlyReader hides (*os.File).WriteTo for the same reason.
type onlyReader struct{ io.Reader }

func copyFile(dst, src *os.File) error {
	b := bufPool.Get().(*[]byte)
	defer bufPool.Put(b)
	_, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, *b)
	return err
}

// Name implements engine.Driver.
func (d *Driver) Name() string { return Name }

// Path implements engine.Driver.
func (d *Driver) Path(id string) string { return d.store.Path(id) }

// Create implements engine.Driver.
func (d *Driver) Create(ctx context.Context, id string) error { return d.store.Create(ctx, id) }

// Snapshot implements engine.Driver: a full copy marked read-only.
func (d *Driver) Snapshot(ctx context.Context, src, id string) error {
	return d.store.Make(ctx, src, id, true, copyFile)
}

// Clone implements engine.Driver: a full copy.
func (d *Driver) Clone(ctx context.Context, src, id string) error {
	return d.store.Make(ctx, src, id, false, copyFile)
}

// Destroy implements engine.Driver.
func (d *Driver) Destroy(ctx context.Context, id string) error { return d.store.Destroy(ctx, id) }

// List implements engine.Lister.
func (d *Driver) List(ctx context.Context) ([]string, error) { return d.store.List(ctx) }

// ReadOnly reports whether volume id is a snapshot.
func (d *Driver) ReadOnly(id string) bool { return d.store.ReadOnly(id) }

// CloneTree copies the directory tree srcDir onto dstDir. dstDir is created
// if missing; if it exists, files from srcDir replace entries of the same
// name and other entries stay. A source file that vanishes during the copy
// is skipped. On error dstDir may be partly written.
func (d *Driver) CloneTree(ctx context.Context, srcDir, dstDir string) error {
	if err := tree.Copy(ctx, srcDir, dstDir, copyFile); err != nil {
		return fmt.Errorf("copy tree %s to %s: %w", srcDir, dstDir, tree.WrapNoSpace(err))
	}
	return nil
}

// Usage implements engine.Driver: everything is exclusive.
func (d *Driver) Usage(ctx context.Context, id string) (engine.Usage, error) {
	if err := tree.ValidID(id); err != nil {
		return engine.Usage{}, fmt.Errorf("usage: %w", err)
	}
	if _, err := os.Lstat(d.Path(id)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return engine.Usage{}, fmt.Errorf("usage %s: %w", id, engine.ErrNotFound)
		}
		return engine.Usage{}, fmt.Errorf("usage %s: %w", id, err)
	}
	n, err := tree.ApparentSize(ctx, d.Path(id))
	if err != nil {
		return engine.Usage{}, fmt.Errorf("usage %s: %w", id, err)
	}
	return engine.Usage{TotalBytes: n, ExclusiveBytes: n, Method: "copy"}, nil
}
