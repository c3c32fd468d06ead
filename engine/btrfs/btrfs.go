package btrfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/internal/tree"
	"github.com/pgtwin/pgtwin/internal/logkey"
)

// Name is the driver's name in config and logs.
const Name = "btrfs"

// subvolIno is the inode number of every subvolume's root directory.
const subvolIno = 256

// Driver keeps volumes as btrfs subvolumes under one root directory.
type Driver struct {
	root  string
	log   zerolog.Logger
	quota bool // qgroups enabled and usable for Usage
}

var (
	_ engine.Driver            = (*Driver)(nil)
	_ engine.AtomicSnapshotter = (*Driver)(nil)
	_ engine.Lister            = (*Driver)(nil)
)

// Open uses root (created if missing) on a btrfs filesystem. It fails with
// engine.ErrUnsupported when root is on another filesystem.
func Open(ctx context.Context, root string, log zerolog.Logger) (*Driver, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("btrfs driver: %w", err)
	}
	fs, magic, err := tree.FSType(root)
	if err != nil {
		return nil, fmt.Errorf("btrfs driver: %w", err)
	}
	if magic != unix.BTRFS_SUPER_MAGIC {
		return nil, fmt.Errorf("btrfs driver: %s is on %s, not btrfs: %w", root, fs, engine.ErrUnsupported)
	}
	if _, err := exec.LookPath("btrfs"); err != nil {
		return nil, fmt.Errorf("btrfs driver: btrfs command not found (install btrfs-progs): %w", err)
	}
	d := &Driver{root: root, log: log.With().Str(logkey.Driver, Name).Logger()}
	d.quota = d.enableQuota(ctx)
	return d, nil
}

// enableQuota turns quotas on once per filesystem: simple quotas where the
// kernel has them, else qgroups; enabling qgroups on a filesystem that holds
// data starts a rescan, which is waited for so the first Usage is right. A
// filesystem that has either already keeps it.
func (d *Driver) enableQuota(ctx context.Context) bool {
	if _, _, err := run(ctx, "qgroup", "show", "--raw", "-f", d.root); err == nil {
		return true
	}
	err := enableSimpleQuota(d.root)
	if err == nil {
		d.log.Info().Str(logkey.Path, d.root).Msg("enabled btrfs simple quotas for usage accounting")
		return true
	}
	d.log.Info().Err(err).Msg("btrfs simple quotas unavailable (Linux >= 6.7); enabling qgroups, which slow each snapshot as subvolumes accumulate")
	if _, _, err := run(ctx, "quota", "enable", d.root); err != nil {
		d.log.Warn().Err(err).Msg("btrfs quotas unavailable, usage falls back to btrfs filesystem du")
		return false
	}
	if _, _, err := run(ctx, "quota", "rescan", "-W", d.root); err != nil {
		d.log.Warn().Err(err).Msg("waiting for btrfs quota rescan")
	}
	d.log.Info().Str(logkey.Path, d.root).Msg("enabled btrfs quotas for usage accounting")
	return true
}

// Name implements engine.Driver.
func (d *Driver) Name() string { return Name }

// Path implements engine.Driver.
func (d *Driver) Path(id string) string { return filepath.Join(d.root, id) }

// AtomicSnapshot is true: a subvolume snapshot captures every file at once.
func (d *Driver) AtomicSnapshot() bool { return true }

// kind is what is at a volume's path.
type kind int

const (
	missing kind = iota
	subvolume
	plainDir // not made by this driver (or by a crash of something else)
)

func (d *Driver) stat(id string) (kind, error) {
	var st unix.Stat_t
	if err := unix.Lstat(d.Path(id), &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return missing, nil
		}
		return missing, &os.PathError{Op: "lstat", Path: d.Path(id), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return missing, fmt.Errorf("%s is not a directory", d.Path(id))
	}
	if st.Ino == subvolIno {
		return subvolume, nil
	}
	return plainDir, nil
}

// Create implements engine.Driver.
func (d *Driver) Create(ctx context.Context, id string) error {
	if err := tree.ValidID(id); err != nil {
		return fmt.Errorf("create volume: %w", err)
	}
	if k, err := d.stat(id); err != nil {
		return fmt.Errorf("create volume %s: %w", id, err)
	} else if k != missing {
		return fmt.Errorf("create volume %s: %w", id, engine.ErrExists)
	}
	if _, _, err := run(ctx, "subvolume", "create", d.Path(id)); err != nil {
		return fmt.Errorf("create volume %s: %w", id, err)
	}
	return nil
}

// Snapshot implements engine.Driver with a read-only subvolume snapshot.
func (d *Driver) Snapshot(ctx context.Context, src, id string) error {
	return d.snapshot(ctx, "snapshot", src, id, true)
}

// Clone implements engine.Driver with a writable subvolume snapshot.
func (d *Driver) Clone(ctx context.Context, src, id string) error {
	return d.snapshot(ctx, "clone", src, id, false)
}

func (d *Driver) snapshot(ctx context.Context, op, src, id string, readOnly bool) error {
	if err := tree.ValidID(src); err != nil {
		return fmt.Errorf("%s: source: %w", op, err)
	}
	if err := tree.ValidID(id); err != nil {
		return fmt.Errorf("%s %s: %w", op, src, err)
	}
	k, err := d.stat(src)
	switch {
	case err != nil:
		return fmt.Errorf("%s %s to %s: %w", op, src, id, err)
	case k == missing:
		return fmt.Errorf("%s %s to %s: source volume: %w", op, src, id, engine.ErrNotFound)
	case k == plainDir:
		return fmt.Errorf("%s %s to %s: source %s is not a btrfs subvolume", op, src, id, d.Path(src))
	}
	if k, err := d.stat(id); err != nil {
		return fmt.Errorf("%s %s to %s: %w", op, src, id, err)
	} else if k != missing {
		return fmt.Errorf("%s %s to %s: %w", op, src, id, engine.ErrExists)
	}
	args := []string{"subvolume", "snapshot"}
	if readOnly {
		args = append(args, "-r")
	}
	if _, _, err := run(ctx, append(args, d.Path(src), d.Path(id))...); err != nil {
		// The ioctl is atomic, but a cancelled command may still have
		// finished it: never leave a volume the caller thinks failed.
		if k, _ := d.stat(id); k == subvolume {
			_ = d.deleteSubvolume(context.WithoutCancel(ctx), id)
		}
		return fmt.Errorf("%s %s to %s: %w", op, src, id, err)
	}
	return nil
}

// Destroy implements engine.Driver. A snapshot's read-only flag is cleared
// first, so deleting also works where only user_subvol_rm_allowed grants it.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	if err := tree.ValidID(id); err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	k, err := d.stat(id)
	switch {
	case err != nil:
		return fmt.Errorf("destroy %s: %w", id, err)
	case k == missing:
		return fmt.Errorf("destroy %s: %w", id, engine.ErrNotFound)
	case k == plainDir:
		if err := os.RemoveAll(d.Path(id)); err != nil {
			return fmt.Errorf("destroy %s: %w", id, err)
		}
		return nil
	}
	if err := d.deleteSubvolume(ctx, id); err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	return nil
}

func (d *Driver) deleteSubvolume(ctx context.Context, id string) error {
	p := d.Path(id)
	out, _, err := run(ctx, "property", "get", "-ts", p, "ro")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == "ro=true" {
		if _, _, err := run(ctx, "property", "set", "-ts", p, "ro", "false"); err != nil {
			return err
		}
	}
	_, _, err = run(ctx, "subvolume", "delete", p)
	return err
}

// List implements engine.Lister: the subvolumes under the root.
func (d *Driver) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() || tree.ValidID(e.Name()) != nil {
			continue
		}
		if k, err := d.stat(e.Name()); err == nil && k == subvolume {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, ctx.Err()
}

// Usage implements engine.Driver; see the package doc for the method.
func (d *Driver) Usage(ctx context.Context, id string) (engine.Usage, error) {
	if err := tree.ValidID(id); err != nil {
		return engine.Usage{}, fmt.Errorf("usage: %w", err)
	}
	if k, err := d.stat(id); err != nil {
		return engine.Usage{}, fmt.Errorf("usage %s: %w", id, err)
	} else if k == missing {
		return engine.Usage{}, fmt.Errorf("usage %s: %w", id, engine.ErrNotFound)
	}
	total, err := tree.ApparentSize(ctx, d.Path(id))
	if err != nil {
		return engine.Usage{}, fmt.Errorf("usage %s: %w", id, err)
	}
	u := engine.Usage{TotalBytes: total}
	if d.quota {
		excl, ok, err := d.qgroupExclusive(ctx, id)
		if err != nil {
			return engine.Usage{}, fmt.Errorf("usage %s: %w", id, err)
		}
		if ok {
			u.ExclusiveBytes, u.Method = excl, "qgroup"
			return u, nil
		}
	}
	excl, err := d.duExclusive(ctx, id)
	if err != nil {
		return engine.Usage{}, fmt.Errorf("usage %s: %w", id, err)
	}
	u.ExclusiveBytes, u.Method = excl, "du"
	return u, nil
}

// qgroupExclusive reads the exclusive bytes of id's level-0 qgroup. ok is
// false when the kernel says the numbers cannot be trusted right now.
func (d *Driver) qgroupExclusive(ctx context.Context, id string) (int64, bool, error) {
	out, stderr, err := run(ctx, "qgroup", "show", "--raw", "--sync", "-f", d.Path(id))
	if err != nil {
		return 0, false, err
	}
	if strings.Contains(stderr, "rescan is running") {
		return 0, false, nil
	}
	if strings.Contains(stderr, "inconsistent") {
		d.log.Info().Str(logkey.Path, d.root).Msg("btrfs qgroup data inconsistent, starting a rescan")
		if _, _, err := run(ctx, "quota", "rescan", d.root); err != nil {
			d.log.Warn().Err(err).Msg("starting btrfs quota rescan")
		}
		return 0, false, nil
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && strings.HasPrefix(f[0], "0/") {
			n, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("parse btrfs qgroup show line %q: %w", line, err)
			}
			return n, true, nil
		}
	}
	return 0, false, fmt.Errorf("btrfs qgroup show: no level-0 qgroup for %s in %q", d.Path(id), out)
}

// duExclusive reads the Exclusive column of btrfs filesystem du -s --raw.
func (d *Driver) duExclusive(ctx context.Context, id string) (int64, error) {
	out, _, err := run(ctx, "filesystem", "du", "-s", "--raw", d.Path(id))
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 4 {
		return 0, fmt.Errorf("btrfs filesystem du: unexpected output %q", out)
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("btrfs filesystem du: unexpected output %q: %w", out, err)
	}
	return n, nil
}

// CloneTree copies the directory tree srcDir onto dstDir with FICLONE (see
// engine.TreeCloner). The engine does not need it with btrfs, whose
// snapshots are atomic, but it costs nothing to offer. dstDir is created if
// missing; if it exists, files from srcDir replace entries of the same name
// and other entries stay.
func (d *Driver) CloneTree(ctx context.Context, srcDir, dstDir string) error {
	if err := tree.Copy(ctx, srcDir, dstDir, tree.Reflink); err != nil {
		return fmt.Errorf("clone tree %s to %s: %w", srcDir, dstDir, tree.WrapNoSpace(err))
	}
	return nil
}

// run runs the btrfs command and returns its stdout and stderr. The error
// carries stderr and wraps engine.ErrNoSpace or engine.ErrExists when
// stderr says so.
func run(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, "btrfs", args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return o.String(), e.String(), ctx.Err()
		}
		msg := strings.TrimSpace(e.String())
		base := fmt.Errorf("btrfs %s: %w: %s", strings.Join(args, " "), err, msg)
		switch {
		case strings.Contains(msg, "No space left on device"), strings.Contains(msg, "Disk quota exceeded"):
			return o.String(), e.String(), fmt.Errorf("%w: %w", engine.ErrNoSpace, base)
		case strings.Contains(msg, "File exists"):
			return o.String(), e.String(), fmt.Errorf("%w: %w", engine.ErrExists, base)
		}
		return o.String(), e.String(), base
	}
	return o.String(), e.String(), nil
}
