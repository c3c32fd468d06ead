package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pgtwin/pgtwin/internal/durable"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// InitOptions shape a new cluster.
type InitOptions struct {
	// Superuser is the bootstrap role, reachable over the unix socket by root
	// and run_as. Default "postgres".
	Superuser string
	// Locale for initdb. Default C.UTF-8 where the system has it, else C.
	Locale string
}

// InitVolume creates volume id and runs initdb in <volume>/pgdata as run_as,
// with pgtwin's authentication rules.
func (e *Engine) InitVolume(ctx context.Context, id string, opts InitOptions) (err error) {
	if err := e.checkID(id); err != nil {
		return err
	}
	if opts.Superuser == "" {
		opts.Superuser = "postgres"
	}
	if opts.Locale == "" {
		opts.Locale = defaultLocale()
	}
	defer e.lock(id)()
	if exists(e.drv.Path(id)) {
		return fmt.Errorf("init volume %s: %w", id, ErrExists)
	}
	if err := e.record(entry{Op: "init", ID: id, Started: time.Now().UTC()}); err != nil {
		return err
	}
	e.step("init:journaled")
	defer func() {
		if err != nil {
			err = e.abandon(id, fmt.Errorf("init volume %s: %w", id, err))
		}
	}()
	if err := e.drv.Create(ctx, id); err != nil {
		return err
	}
	e.step("init:created")
	vol, pgdata := e.drv.Path(id), e.DataPath(id)
	if err := os.Mkdir(pgdata, 0o700); err != nil {
		return noSpace(err)
	}
	// Only root and run_as may enter the volume.
	if err := os.Chmod(vol, 0o700); err != nil {
		return err
	}
	for _, p := range []string{vol, pgdata} {
		if err := e.user.chown(p); err != nil {
			return err
		}
	}
	args := []string{"-D", pgdata, "-U", opts.Superuser, "-E", "UTF8", "--locale=" + opts.Locale,
		"--auth-local=peer", "--auth-host=scram-sha-256"}
	if e.majorAtLeast(14) {
		args = append(args, "--no-instructions")
	}
	cmd := exec.CommandContext(ctx, e.bin.path("initdb"), args...)
	cmd.Dir = vol
	cmd.Env = e.childEnv()
	cmd.SysProcAttr = e.user.sysProcAttr(false)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return noSpace(fmt.Errorf("initdb: %w: %s", err, tail(out, 10)))
	}
	e.step("init:initdb")
	if err := e.configure(id, opts.Superuser); err != nil {
		return noSpace(err)
	}
	e.step("init:configured")
	if err := e.forget(id); err != nil {
		return err
	}
	e.step("init:done")
	e.log.Info().Str(logkey.Volume, id).Msg("volume initialized")
	return nil
}

// Clone makes volume id, writable, from snapshot (or volume) src. The clone's
// instance is not started; its first start recovers as after a crash (or from
// the backup label of a bracketed copy).
func (e *Engine) Clone(ctx context.Context, src, id string) (err error) {
	if err := e.checkID(src); err != nil {
		return err
	}
	if err := e.checkID(id); err != nil {
		return err
	}
	if !exists(e.DataPath(src)) {
		return fmt.Errorf("clone %s from %s: %w", id, src, ErrNotFound)
	}
	defer e.lock(id)()
	if exists(e.drv.Path(id)) {
		return fmt.Errorf("clone %s from %s: %w", id, src, ErrExists)
	}
	start := time.Now()
	if err := e.record(entry{Op: "clone", ID: id, Src: src, Started: start.UTC()}); err != nil {
		return err
	}
	e.step("clone:journaled")
	defer func() {
		if err != nil {
			err = e.abandon(id, fmt.Errorf("clone %s from %s: %w", id, src, err))
		}
	}()
	if err := e.copyVolume(ctx, src, id, "clone", e.drv.Clone); err != nil {
		return err
	}
	e.step("clone:cloned")
	if err := e.scrub(id); err != nil {
		return err
	}
	e.step("clone:cleaned")
	if err := e.forget(id); err != nil {
		return err
	}
	e.step("clone:done")
	e.log.Info().Str(logkey.Volume, id).Str("src", src).Dur(logkey.Duration, time.Since(start)).Msg("volume cloned")
	return nil
}

// scrub removes what ties a copied data directory to its origin's running
// postmaster, so the clone's postmaster starts instead of seeing a live lock.
func (e *Engine) scrub(id string) error {
	pgdata := e.DataPath(id)
	// A read-only origin's standby.signal too: every clone starts writable.
	for _, f := range []string{"postmaster.pid", "postmaster.opts", readOnlySignal} {
		if err := os.Remove(filepath.Join(pgdata, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// Drivers are expected to keep owners; if one did not, postgres would
	// refuse the directory, so fix it here rather than fail at start.
	if fi, err := os.Stat(pgdata); err == nil && e.user.switched {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != e.user.uid {
			if err := filepath.WalkDir(e.drv.Path(id), func(p string, _ fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return e.user.chown(p)
			}); err != nil {
				return err
			}
		}
	}
	return durable.SyncDir(pgdata)
}

// Destroy stops volume id's instance if it runs and removes the volume.
func (e *Engine) Destroy(ctx context.Context, id string) error {
	if err := e.checkID(id); err != nil {
		return err
	}
	defer e.lock(id)()
	if !exists(e.drv.Path(id)) {
		return fmt.Errorf("destroy %s: %w", id, ErrNotFound)
	}
	if err := e.stop(ctx, id); err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	if err := e.record(entry{Op: "destroy", ID: id, Started: time.Now().UTC()}); err != nil {
		return err
	}
	e.step("destroy:journaled")
	if err := e.removeVolume(ctx, id); err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	if err := e.forget(id); err != nil {
		return err
	}
	e.step("destroy:done")
	e.log.Info().Str(logkey.Volume, id).Msg("volume destroyed")
	return nil
}

// Usage reports volume id's disk usage as the driver measures it.
func (e *Engine) Usage(ctx context.Context, id string) (Usage, error) {
	if err := e.checkID(id); err != nil {
		return Usage{}, err
	}
	u, err := e.drv.Usage(ctx, id)
	if err != nil {
		return Usage{}, fmt.Errorf("usage %s: %w", id, err)
	}
	return u, nil
}

// Volumes lists every volume and snapshot the driver holds, half-made ones
// included until Recover has run.
func (e *Engine) Volumes(ctx context.Context) ([]string, error) {
	if l, ok := e.drv.(Lister); ok {
		return l.List(ctx)
	}
	root := filepath.Dir(e.drv.Path("x"))
	des, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	var ids []string
	for _, de := range des {
		if de.IsDir() && idRE.MatchString(de.Name()) {
			ids = append(ids, de.Name())
		}
	}
	return ids, nil
}

// Recover finishes what a crash interrupted: every journaled volume (a
// half-made init, clone or snapshot, or a half-destroyed volume) is removed.
// It returns their ids. Call it once at start, before other operations.
func (e *Engine) Recover(ctx context.Context) ([]string, error) {
	entries, err := e.journal()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, en := range entries {
		e.log.Warn().Str(logkey.Volume, en.ID).Str("op", en.Op).Str("src", en.Src).Time("started", en.Started).
			Msg("removing volume left half-made by an interrupted operation")
		unlock := e.lock(en.ID)
		err := e.stop(ctx, en.ID)
		if err == nil {
			err = e.removeVolume(ctx, en.ID)
		}
		if err == nil {
			err = e.forget(en.ID)
		}
		unlock()
		if err != nil {
			return ids, fmt.Errorf("recover %s %s: %w", en.Op, en.ID, err)
		}
		if en.Op != "settle" { // internal to a snapshot, which is reported
			ids = append(ids, en.ID)
		}
	}
	return ids, nil
}

// abandon undoes a failed operation on id and keeps the first error.
func (e *Engine) abandon(id string, cause error) error {
	// A cancelled ctx must not stop the cleanup.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.removeVolume(ctx, id); err != nil {
		e.log.Error().Err(err).Str(logkey.Volume, id).Msg("could not remove volume of a failed operation; Recover will retry")
		return noSpace(cause)
	}
	if err := e.forget(id); err != nil {
		e.log.Error().Err(err).Str(logkey.Volume, id).Msg("could not clear journal entry")
	}
	return noSpace(cause)
}

// removeVolume destroys id whatever state it is in; missing is fine.
func (e *Engine) removeVolume(ctx context.Context, id string) error {
	err := e.drv.Destroy(ctx, id)
	if errors.Is(err, ErrNotFound) {
		err = nil
		// A driver killed mid-way may leave a directory it does not
		// recognise as its volume.
		if p := e.drv.Path(id); exists(p) {
			err = os.RemoveAll(p)
		}
	}
	if err != nil {
		return err
	}
	_ = os.RemoveAll(e.socketDir(id))
	_ = os.Remove(e.LogPath(id))
	return nil
}

// noSpace marks errors caused by a full filesystem with ErrNoSpace.
func noSpace(err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(err.Error(), "No space left on device") {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func defaultLocale() string {
	for _, d := range []string{"/usr/lib/locale/C.utf8", "/usr/lib/locale/C.UTF-8"} {
		if exists(d) {
			return "C.UTF-8"
		}
	}
	return "C"
}

func (e *Engine) majorAtLeast(n int) bool { return e.major() >= n }

// major is the PostgreSQL major version of the binaries, 0 if unknown.
func (e *Engine) major() int {
	var v int
	fmt.Sscan(e.bin.version, &v)
	return v
}

// childEnv is the whole environment of initdb and postgres: nothing of the
// daemon's (which may hold secrets) leaks into them.
func (e *Engine) childEnv() []string {
	return []string{"PATH=" + e.bin.dir + ":/usr/bin:/bin", "LC_ALL=C"}
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.TrimSpace([]byte(strings.Join(lines, "\n"))))
}
