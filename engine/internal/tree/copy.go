package tree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// FileCopier fills dst, a new empty file, with the content of src. Metadata
// (owner, mode, times) is applied by Copy afterwards.
type FileCopier func(dst, src *os.File) error

// workers is how many files are copied at once: FICLONE and small reads are
// syscall-bound, so a few in flight hide per-file latency on 2-core hosts.
const workers = 8

type fileJob struct {
	src, dst string
	st       unix.Stat_t
}

type dirMeta struct {
	path string
	st   unix.Stat_t
}

// Copy copies the tree at srcDir onto dstDir with fc for file contents,
// keeping mode, owner (when running as root), access and modification times,
// symlinks and empty directories. Hard links are copied as separate files and
// unix sockets are left out (a socket cannot be copied meaningfully).
//
// dstDir is created if missing. If it exists the trees are merged: a source
// file replaces a destination entry of the same name, other destination
// entries are kept. A source entry that vanishes while Copy runs is skipped,
// as pg_basebackup does, because a live data directory removes WAL segments
// and temp files at any time. On error a partial tree is left for the caller
// to remove.
func Copy(ctx context.Context, srcDir, dstDir string, fc FileCopier) error {
	var st unix.Stat_t
	if err := unix.Lstat(srcDir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: srcDir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("copy tree: %s is not a directory", srcDir)
	}
	c := &treeCopy{ctx: ctx, fc: fc}
	if err := c.mkdir(dstDir); err != nil {
		return err
	}
	c.dirs = append(c.dirs, dirMeta{path: dstDir, st: st})
	if err := c.walk(srcDir, dstDir); err != nil {
		return err
	}
	if err := c.copyFiles(); err != nil {
		return err
	}
	// Directory times last: creating entries inside a directory moves its
	// mtime, and chmod/chown/utimes on a child never touch the parent.
	for _, d := range c.dirs {
		if err := applyMeta(d.path, &d.st, false); err != nil {
			return err
		}
	}
	return nil
}

type treeCopy struct {
	ctx   context.Context
	fc    FileCopier
	files []fileJob
	dirs  []dirMeta
}

func (c *treeCopy) mkdir(dst string) error {
	var dt unix.Stat_t
	err := unix.Lstat(dst, &dt)
	switch {
	case err == nil && dt.Mode&unix.S_IFMT == unix.S_IFDIR:
		return nil
	case err == nil:
		return fmt.Errorf("copy tree: %s exists and is not a directory", dst)
	case !errors.Is(err, unix.ENOENT):
		return &os.PathError{Op: "lstat", Path: dst, Err: err}
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	return nil
}

// walk creates directories and symlinks at once and queues regular files.
func (c *treeCopy) walk(src, dst string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		s := filepath.Join(src, e.Name())
		d := filepath.Join(dst, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(s, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return &os.PathError{Op: "lstat", Path: s, Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := c.mkdir(d); err != nil {
				return err
			}
			c.dirs = append(c.dirs, dirMeta{path: d, st: st})
			if err := c.walk(s, d); err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := removeNonDir(d); err != nil {
				return err
			}
			c.files = append(c.files, fileJob{src: s, dst: d, st: st})
		case unix.S_IFLNK:
			if err := copySymlink(s, d, &st); err != nil {
				return err
			}
		case unix.S_IFSOCK:
			continue
		default:
			return fmt.Errorf("copy tree: %s: unsupported file type %#o", s, st.Mode&unix.S_IFMT)
		}
	}
	return nil
}

func (c *treeCopy) copyFiles() error {
	if len(c.files) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	jobs := make(chan *fileJob)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	n := min(workers, len(c.files))
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := copyFile(j, c.fc); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
	for i := range c.files {
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- &c.files[i]:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return c.ctx.Err()
}

// copyFile opens with raw syscalls: os.OpenFile's poller registration costs
// several fcntl and epoll_ctl calls per file, which add up over the thousand
// files of a data directory.
func copyFile(j *fileJob, fc FileCopier) error {
	sfd, err := unix.Open(j.src, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &os.PathError{Op: "open", Path: j.src, Err: err}
	}
	in := os.NewFile(uintptr(sfd), j.src)
	defer in.Close()
	dfd, err := unix.Open(j.dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return &os.PathError{Op: "open", Path: j.dst, Err: err}
	}
	out := os.NewFile(uintptr(dfd), j.dst)
	if err := fc(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", j.src, err)
	}
	// Owner, then mode (chown clears setuid bits), on the open file.
	if err := unix.Fchown(dfd, int(j.st.Uid), int(j.st.Gid)); err != nil && (isRoot || !errors.Is(err, unix.EPERM)) {
		out.Close()
		return &os.PathError{Op: "fchown", Path: j.dst, Err: err}
	}
	if err := unix.Fchmod(dfd, j.st.Mode&0o7777); err != nil {
		out.Close()
		return &os.PathError{Op: "fchmod", Path: j.dst, Err: err}
	}
	if err := out.Close(); err != nil {
		return err
	}
	ts := []unix.Timespec{j.st.Atim, j.st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, j.dst, ts, 0); err != nil {
		return &os.PathError{Op: "utimes", Path: j.dst, Err: err}
	}
	return nil
}

func copySymlink(src, dst string, st *unix.Stat_t) error {
	target, err := os.Readlink(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := removeNonDir(dst); err != nil {
		return err
	}
	if err := os.Symlink(target, dst); err != nil {
		return err
	}
	return applyMeta(dst, st, true)
}

// removeNonDir clears the way for a file or symlink in a merge; replacing a
// directory with a file is refused rather than deleting a subtree.
func removeNonDir(p string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("copy tree: %s is a directory in the destination and a file in the source", p)
	}
	return os.Remove(p)
}

var isRoot = os.Geteuid() == 0

// applyMeta sets owner, then mode (chown clears setuid bits), then times.
func applyMeta(p string, st *unix.Stat_t, symlink bool) error {
	if err := unix.Lchown(p, int(st.Uid), int(st.Gid)); err != nil && (isRoot || !errors.Is(err, unix.EPERM)) {
		return &os.PathError{Op: "lchown", Path: p, Err: err}
	}
	flags := 0
	if symlink {
		flags = unix.AT_SYMLINK_NOFOLLOW
	} else if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, flags); err != nil {
		return &os.PathError{Op: "utimes", Path: p, Err: err}
	}
	return nil
}

// WalkFiles calls fn for every regular file under dir, with its stat.
func WalkFiles(ctx context.Context, dir string, fn func(path string, st *unix.Stat_t) error) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		return fn(p, &st)
	})
}

// ApparentSize is the sum of the sizes of the regular files under dir.
func ApparentSize(ctx context.Context, dir string) (int64, error) {
	var n int64
	err := WalkFiles(ctx, dir, func(_ string, st *unix.Stat_t) error {
		n += st.Size
		return nil
	})
	return n, err
}

// Reflink is the FileCopier that shares all of src's extents with dst by one
// FICLONE ioctl (XFS with reflink, btrfs).
func Reflink(dst, src *os.File) error {
	if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err != nil {
		return &os.PathError{Op: "ficlone", Path: dst.Name(), Err: err}
	}
	return nil
}
