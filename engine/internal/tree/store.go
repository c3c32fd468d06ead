package tree

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/engine"
)

// Layout of a Store root:
//
//	<root>/<id>/            a volume (a plain directory)
//	<root>/.readonly/<id>   marker: volume id is a snapshot
//	<root>/.staging/        clones being built and volumes being destroyed
//
// A clone is built under .staging and renamed into place, so a volume id
// either exists complete or not at all, even after kill -9; leftovers in
// .staging are deleted by OpenStore.
const (
	readonlyDir = ".readonly"
	stagingDir  = ".staging"
)

// Store is a root directory of directory volumes.
type Store struct {
	root string
	// SyncData makes Make flush the filesystem before a new volume gets its
	// name, so a power loss cannot leave it with empty files. A byte copy
	// needs it (ext4 allocates blocks lazily, after the rename may be
	// committed). Reflink clones do not: FICLONE writes back the source
	// first and a clone is only metadata, which XFS and btrfs journal in
	// order, so the rename never reaches the disk before the files do;
	// skipping it keeps a clone's time independent of other writers.
	SyncData bool
}

// OpenStore creates root if needed and clears what a crash left in staging
// (half-made clones and snapshots, half-deleted volumes), returning the
// names it removed so the caller can report them.
func OpenStore(root string) (*Store, []string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range []string{root, filepath.Join(root, readonlyDir), filepath.Join(root, stagingDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, fmt.Errorf("open volume root: %w", err)
		}
	}
	s := &Store{root: root}
	entries, err := os.ReadDir(s.Staging())
	if err != nil {
		return nil, nil, fmt.Errorf("open volume root: %w", err)
	}
	var removed []string
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.Staging(), e.Name())); err != nil {
			return nil, removed, fmt.Errorf("remove leftover %s: %w", e.Name(), err)
		}
		removed = append(removed, e.Name())
	}
	return s, removed, nil
}

// Root is the absolute root directory.
func (s *Store) Root() string { return s.root }

// Staging is a directory on the same filesystem for temporary trees.
func (s *Store) Staging() string { return filepath.Join(s.root, stagingDir) }

// Path is where volume id lives.
func (s *Store) Path(id string) string { return filepath.Join(s.root, id) }

func (s *Store) marker(id string) string { return filepath.Join(s.root, readonlyDir, id) }

// ReadOnly reports whether id was made by a snapshot.
func (s *Store) ReadOnly(id string) bool {
	_, err := os.Lstat(s.marker(id))
	return err == nil
}

func (s *Store) exists(id string) (bool, error) {
	fi, err := os.Lstat(s.Path(id))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s is not a directory", s.Path(id))
	}
	return true, nil
}

// Create makes an empty writable volume.
func (s *Store) Create(_ context.Context, id string) error {
	if err := ValidID(id); err != nil {
		return fmt.Errorf("create volume: %w", err)
	}
	// A marker without a volume is left by a crash during Destroy.
	if err := removeIfExists(s.marker(id)); err != nil {
		return fmt.Errorf("create volume %s: %w", id, err)
	}
	if err := os.Mkdir(s.Path(id), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create volume %s: %w", id, engine.ErrExists)
		}
		return fmt.Errorf("create volume %s: %w", id, wrapNoSpace(err))
	}
	return nil
}

// Make copies volume src to a new volume id with fc, read-only (a snapshot)
// or writable (a clone). Nothing of id is left behind on error.
func (s *Store) Make(ctx context.Context, src, id string, readOnly bool, fc FileCopier) (err error) {
	op := "clone"
	if readOnly {
		op = "snapshot"
	}
	if err := ValidID(src); err != nil {
		return fmt.Errorf("%s: source: %w", op, err)
	}
	if err := ValidID(id); err != nil {
		return fmt.Errorf("%s %s: %w", op, src, err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s %s to %s: %w", op, src, id, err)
		}
	}()
	ok, err := s.exists(src)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("source volume: %w", engine.ErrNotFound)
	}
	if ok, err := s.exists(id); err != nil {
		return err
	} else if ok {
		return engine.ErrExists
	}
	tmp := filepath.Join(s.Staging(), id+"."+randSuffix())
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := Copy(ctx, s.Path(src), tmp, fc); err != nil {
		return wrapNoSpace(err)
	}
	if err := removeIfExists(s.marker(id)); err != nil {
		return err
	}
	if readOnly {
		if err := os.WriteFile(s.marker(id), nil, 0o600); err != nil {
			return wrapNoSpace(err)
		}
	}
	if s.SyncData {
		if err := syncFS(tmp); err != nil {
			return wrapNoSpace(err)
		}
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, s.Path(id), unix.RENAME_NOREPLACE); err != nil {
		if readOnly {
			os.Remove(s.marker(id))
		}
		if errors.Is(err, unix.EEXIST) {
			return engine.ErrExists
		}
		return wrapNoSpace(&os.LinkError{Op: "rename", Old: tmp, New: s.Path(id), Err: err})
	}
	return syncDir(s.root)
}

// Destroy removes volume or snapshot id.
func (s *Store) Destroy(_ context.Context, id string) error {
	if err := ValidID(id); err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	ok, err := s.exists(id)
	if err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("destroy %s: %w", id, engine.ErrNotFound)
	}
	// Rename first so the id disappears at once; a crash mid-delete leaves
	// only staging garbage, never a half-deleted volume under its id.
	tmp := filepath.Join(s.Staging(), id+".destroy."+randSuffix())
	if err := os.Rename(s.Path(id), tmp); err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	if err := removeIfExists(s.marker(id)); err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	return nil
}

// List returns the ids of all volumes and snapshots, sorted.
func (s *Store) List(_ context.Context) ([]string, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && ValidID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func randSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// syncFS flushes the whole filesystem holding dir: one syscall instead of an
// fsync per file, and it covers directory entries too.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// IsNoSpace reports whether err means the filesystem (or quota) is full.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func wrapNoSpace(err error) error {
	if err != nil && IsNoSpace(err) && !errors.Is(err, engine.ErrNoSpace) {
		return fmt.Errorf("%w: %w", engine.ErrNoSpace, err)
	}
	return err
}

// WrapNoSpace adds engine.ErrNoSpace to err when it is ENOSPC or EDQUOT.
func WrapNoSpace(err error) error { return wrapNoSpace(err) }
