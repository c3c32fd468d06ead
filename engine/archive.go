package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/durable"
	"github.com/pgtwin/pgtwin/internal/logkey"
)

// WAL archiving and point-in-time recovery for main (snapshots.pitr_window).
// The archive is a directory outside every volume, written by main's own
// archiver (so it goes on while the daemon is down) and read by a branch's
// startup process while it recovers.

// ArchiveSettings are the settings that make an instance archive each
// finished WAL segment into dir. The command copies to a temporary name,
// fsyncs it, renames it and fsyncs dir, so a segment in dir is whole; it
// fails (postgres keeps the segment and retries) when any step fails. A
// segment already archived is accepted again only when identical: after a
// crash between the rename and postgres noting it done.
func ArchiveSettings(dir string) map[string]string {
	d := shellQuote(strings.ReplaceAll(dir, "%", "%%"))
	cmd := fmt.Sprintf(`if test -f %[1]s/%%f; then cmp -s %%p %[1]s/%%f; else cp %%p %[1]s/.%%f.tmp && sync %[1]s/.%%f.tmp && mv %[1]s/.%%f.tmp %[1]s/%%f && sync %[1]s; fi`, d)
	return map[string]string{"archive_mode": "on", "archive_command": cmd}
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// PrepareArchiveDir makes dir (and its parents) for run_as to write, mode
// 0700: it holds main's WAL, masked data only, but still nobody else's.
func (e *Engine) PrepareArchiveDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("wal archive: %w", err)
	}
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := e.user.chown(p); err != nil {
			return fmt.Errorf("wal archive: %w", err)
		}
		if err := os.Chmod(p, 0o700); err != nil {
			return fmt.Errorf("wal archive: %w", err)
		}
	}
	return e.user.reachable(filepath.Dir(filepath.Dir(dir)), false)
}

// SystemID is volume id's database system identifier, read from
// global/pg_control (it comes first there): a new cluster, as ReplaceMain
// makes, has a new one, so WAL of different mains never mixes.
func (e *Engine) SystemID(id string) (uint64, error) {
	f, err := os.Open(filepath.Join(e.DataPath(id), "global", "pg_control"))
	if err != nil {
		return 0, fmt.Errorf("system identifier of %s: %w", id, err)
	}
	defer f.Close()
	var b [8]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0, fmt.Errorf("system identifier of %s: %w", id, err)
	}
	return binary.NativeEndian.Uint64(b[:]), nil
}

// SnapshotUnsettled is Snapshot without the settling: the snapshot of a
// running src is the crash-consistent image (atomic driver) or the backup
// with its label, as it was, so archive recovery can replay main's WAL on
// top of it. A settled snapshot cannot serve: its own shutdown checkpoint
// sits where main's WAL holds other records. Clones of it do a short crash
// recovery at their first start.
func (e *Engine) SnapshotUnsettled(ctx context.Context, src, id string) (err error) {
	if err := e.checkID(src); err != nil {
		return err
	}
	if err := e.checkID(id); err != nil {
		return err
	}
	if !exists(e.DataPath(src)) {
		return fmt.Errorf("snapshot %s of %s: %w", id, src, ErrNotFound)
	}
	defer e.lock(id)()
	if exists(e.drv.Path(id)) {
		return fmt.Errorf("snapshot %s of %s: %w", id, src, ErrExists)
	}
	start := time.Now()
	if err := e.record(entry{Op: "snapshot", ID: id, Src: src, Started: start.UTC()}); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = e.abandon(id, fmt.Errorf("snapshot %s of %s: %w", id, src, err))
		}
	}()
	if err := e.copyVolume(ctx, src, id, "snapshot", e.drv.Snapshot); err != nil {
		return err
	}
	e.step("snapshot:snapshotted")
	if err := e.forget(id); err != nil {
		return err
	}
	e.log.Info().Str(logkey.Snapshot, id).Str("src", src).Bool("settled", false).Dur(logkey.Duration, time.Since(start)).Msg("snapshot taken")
	return nil
}

// Recovery is a point-in-time recovery of a fresh clone.
type Recovery struct {
	ArchiveDir string // where restore_command finds the segments
	TargetXID  string // recover up to and including this transaction's commit
}

// PrepareRecovery arms clone id (not yet started) for archive recovery to
// r and returns the settings its first start needs. Once recovered it
// promotes: a new timeline, an ordinary writable instance; the settings do
// nothing at later starts (recovery.signal is gone by then).
func (e *Engine) PrepareRecovery(id string, r Recovery) (map[string]string, error) {
	if _, err := strconv.ParseUint(r.TargetXID, 10, 64); err != nil {
		return nil, fmt.Errorf("recovery target xid %q: %w", r.TargetXID, err)
	}
	p := filepath.Join(e.DataPath(id), "recovery.signal")
	if err := durable.WriteFile(p, nil, 0o600); err != nil {
		return nil, err
	}
	if err := e.user.chown(p); err != nil {
		return nil, err
	}
	d := shellQuote(strings.ReplaceAll(r.ArchiveDir, "%", "%%"))
	return map[string]string{
		"restore_command":           "cp " + d + "/%f %p",
		"recovery_target_xid":       r.TargetXID,
		"recovery_target_inclusive": "on",
		"recovery_target_timeline":  "current",
		"recovery_target_action":    "promote",
	}, nil
}

// WaitPromoted waits until inst has left recovery (a hot standby accepts
// connections before it reaches its target).
func (e *Engine) WaitPromoted(ctx context.Context, inst *Instance) error {
	deadline := time.Now().Add(e.opts.StartTimeout)
	for {
		conn, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, "template1"))
		if err == nil {
			var rec bool
			err = conn.QueryRow(ctx, "SELECT pg_catalog.pg_is_in_recovery()").Scan(&rec)
			conn.Close(context.WithoutCancel(ctx))
			if err == nil && !rec {
				return nil
			}
		}
		if !alive(inst.PID) {
			return fmt.Errorf("recovery of %s failed: %s", inst.ID, e.logTail(inst.ID, 0))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("recovery of %s: still recovering after %s: %s", inst.ID, e.opts.StartTimeout, e.logTail(inst.ID, 0))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// walName matches a WAL segment file: timeline, log, segment.
var walName = regexp.MustCompile(`^[0-9A-F]{24}$`)

// ArchiveUsage is what an archive directory holds.
type ArchiveUsage struct {
	Segments int
	Bytes    int64
	Oldest   string // oldest segment's name
}

// TrimArchive removes from dir every segment older than keepFrom (a
// segment name: the oldest one a recovery may still need), and temporary
// files of copies that died (older than an hour: a live copy renames
// within seconds). Whole segments only ever appear in dir, so what stays is
// usable whatever was interrupted.
func TrimArchive(dir, keepFrom string) (removed int, err error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	for _, de := range des {
		name := de.Name()
		old := walName.MatchString(name) && keepFrom != "" && name[8:] < keepFrom[8:]
		if strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") {
			if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
				old = true
			}
		}
		if !old {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		removed++
	}
	if removed > 0 {
		return removed, durable.SyncDir(dir)
	}
	return 0, nil
}

// ArchiveStat measures dir.
func ArchiveStat(dir string) (ArchiveUsage, error) {
	var u ArchiveUsage
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return u, err
	}
	for _, de := range des {
		if !walName.MatchString(de.Name()) {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		u.Segments++
		u.Bytes += fi.Size()
		if u.Oldest == "" || de.Name()[8:] < u.Oldest[8:] {
			u.Oldest = de.Name()
		}
	}
	return u, nil
}
