package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pgtwin/pgtwin/internal/durable"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// Snapshot makes read-only snapshot id of volume src, consistent even while
// src's instance runs: an atomic driver captures it at one instant; any other
// copy of a running instance is bracketed by pg_backup_start/pg_backup_stop
// and gets the backup label.
//
// A copy of a running instance needs recovery when started. Rather than have
// every clone pay for it (redo, an fsync of the whole data directory and an
// end-of-recovery checkpoint, a second or more at a few GB), the copy is
// first made writable, started once without TCP, shut down cleanly, and only
// then snapshotted ("settled"): clones of it start like a stopped server.
// The copy driver skips this, as a second full copy costs more than it saves.
func (e *Engine) Snapshot(ctx context.Context, src, id string) (err error) {
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
	e.step("snapshot:journaled")
	defer func() {
		if err != nil {
			err = e.abandon(id, fmt.Errorf("snapshot %s of %s: %w", id, src, err))
		}
	}()
	_, _, running := e.instance(src)
	if running && e.drv.Name() != "copy" {
		if err := e.settledSnapshot(ctx, src, id); err != nil {
			return err
		}
	} else {
		if err := e.copyVolume(ctx, src, id, "snapshot", e.drv.Snapshot); err != nil {
			return err
		}
		e.step("snapshot:snapshotted")
	}
	if err := e.forget(id); err != nil {
		return err
	}
	e.step("snapshot:done")
	e.log.Info().Str(logkey.Snapshot, id).Str("src", src).Bool("settled", running).Dur(logkey.Duration, time.Since(start)).Msg("snapshot taken")
	return nil
}

// settledSnapshot copies running src to a writable temporary volume,
// recovers it by a start and a clean shutdown, and snapshots that.
func (e *Engine) settledSnapshot(ctx context.Context, src, id string) (err error) {
	tmp := id + ".settle"
	if err := e.record(entry{Op: "settle", ID: tmp, Src: src, Started: time.Now().UTC()}); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = e.abandon(tmp, err)
		}
	}()
	if err := e.copyVolume(ctx, src, tmp, "snapshot", e.drv.Clone); err != nil {
		return err
	}
	e.step("snapshot:copied")
	if err := e.scrub(tmp); err != nil {
		return err
	}
	// Unix socket only: no TCP port to allocate or to collide on.
	inst, err := e.launch(ctx, tmp, InstanceSpec{Port: 5432}, "")
	if err != nil {
		return fmt.Errorf("recover the copy: %w", err)
	}
	if err := e.signalAndWait(ctx, tmp, inst.PID, syscall.SIGINT, e.opts.StopTimeout); err != nil {
		_ = e.stop(context.Background(), tmp)
		return fmt.Errorf("clean shutdown of the recovered copy: %w", err)
	}
	e.step("snapshot:recovered")
	if err := e.drv.Snapshot(ctx, tmp, id); err != nil {
		return err
	}
	e.step("snapshot:snapshotted")
	if err := e.removeVolume(ctx, tmp); err != nil {
		return err
	}
	if err := e.forget(tmp); err != nil {
		return err
	}
	e.step("snapshot:settled")
	return nil
}

func (e *Engine) atomic() bool {
	a, ok := e.drv.(AtomicSnapshotter)
	return ok && a.AtomicSnapshot()
}

// copyVolume runs the driver's copy (fn) of src into id, bracketed by a
// backup when src is running and the driver cannot copy it at one instant.
func (e *Engine) copyVolume(ctx context.Context, src, id, op string, fn func(ctx context.Context, src, id string) error) error {
	inst, _, running := e.instance(src)
	if !running || e.atomic() {
		return fn(ctx, src, id)
	}
	// template1 is the one database no branch owner owns, whatever the
	// twin's database is called (it may be "postgres", hers then).
	conn, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, "template1"))
	if err != nil {
		return fmt.Errorf("connect to running %s for a backup: %w", src, err)
	}
	// Closing the session aborts a backup still in progress.
	defer conn.Close(context.Background())
	startSQL, stopSQL := "SELECT pg_catalog.pg_backup_start($1, true)", "SELECT labelfile, spcmapfile FROM pg_catalog.pg_backup_stop(false)"
	if !e.majorAtLeast(15) {
		startSQL, stopSQL = "SELECT pg_catalog.pg_start_backup($1, true, false)", "SELECT labelfile, spcmapfile FROM pg_catalog.pg_stop_backup(false, false)"
	}
	if _, err := conn.Exec(ctx, startSQL, "pgtwin "+op+" "+id); err != nil {
		return fmt.Errorf("backup start on %s: %w", src, err)
	}
	e.step(op + ":backup_started")
	if err := fn(ctx, src, id); err != nil {
		return err
	}
	e.step(op + ":backup_copied")
	var label, spcmap string
	if err := conn.QueryRow(ctx, stopSQL).Scan(&label, &spcmap); err != nil {
		return fmt.Errorf("backup stop on %s: %w", src, err)
	}
	e.step(op + ":backup_stopped")
	// The copy may lack the WAL written while it ran, up to the backup's end:
	// take pg_wal again now, merging so no older segment is lost.
	if err := e.refreshWAL(ctx, src, id); err != nil {
		return fmt.Errorf("copy WAL of %s: %w", src, err)
	}
	e.step(op + ":wal_copied")
	pgdata := e.DataPath(id)
	files := map[string]string{"backup_label": label, "tablespace_map": spcmap}
	for name, content := range files {
		if content == "" {
			continue
		}
		p := filepath.Join(pgdata, name)
		if err := durable.WriteFile(p, []byte(content), 0o600); err != nil {
			return err
		}
		if err := e.user.chown(p); err != nil {
			return err
		}
	}
	e.step(op + ":label_written")
	return nil
}

func (e *Engine) refreshWAL(ctx context.Context, src, id string) error {
	srcWAL := filepath.Join(e.DataPath(src), "pg_wal")
	dstWAL := filepath.Join(e.DataPath(id), "pg_wal")
	tmp := filepath.Join(e.DataPath(id), "pg_wal.pgtwin-new")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if tc, ok := e.drv.(TreeCloner); ok {
		if err := tc.CloneTree(ctx, srcWAL, tmp); err != nil {
			return err
		}
	} else if err := copyTree(ctx, srcWAL, tmp); err != nil {
		return err
	}
	des, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, de := range des {
		if de.IsDir() {
			continue // archive_status: nothing to archive in a copy
		}
		if err := os.Rename(filepath.Join(tmp, de.Name()), filepath.Join(dstWAL, de.Name())); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	return durable.SyncDir(dstWAL)
}
