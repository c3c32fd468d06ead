package twinsync

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/internal/startstop"
	"github.com/pgtwin/pgtwin/twin/api"
)

// logicalSyncer is logical mode behind the Syncer: a Follower keeps main
// following the source; sync.schedule and `sync now` take snapshots at a
// source transaction boundary; `sync now --resync` rebuilds main from
// scratch in the background.
type logicalSyncer struct {
	s        *Syncer
	f        *follower
	sched    *scheduler
	main     Main
	finished func(time.Duration, error)
	stopFile string // a `sync stop` kept across restarts (stopRecord)
	walWarn  int64  // sync.retained_wal_warning

	life     startstop.Base // resyncs run under it
	mu       sync.Mutex
	bg       context.Context // the resyncs' context; Stop cancels it
	resyncOn bool
	// watchCancel ends the slot monitor that runs while stopped.
	watchCancel context.CancelFunc
	lastSnap    string
	lastErr     error
	lastAt      time.Time
}

func newLogicalSyncer(s *Syncer, cfg config.Config, main Main, tmp, binDir string, finished func(time.Duration, error)) (*logicalSyncer, error) {
	l := &logicalSyncer{s: s, main: main, finished: finished,
		stopFile: filepath.Join(cfg.Daemon.DataDir, "state", "sync-stopped.json"),
		walWarn:  int64(cfg.Sync.RetainedWALWarning)}
	l.f = &follower{
		Source: s.src, Selection: s.sel, Parallel: cfg.Sync.Parallel,
		Slot: cfg.Sync.Slot, Publication: cfg.Sync.Publication, UsePublication: cfg.Sync.Publication != "",
		TargetConn: main.ConnString,
		Rebuild: func(ctx context.Context, fill func(context.Context, target) error) error {
			_, err := replaceWithLocale(ctx, main, s.src, backoff{}, s.log, binDir, fill)
			return err
		},
		SpillDir:   tmp,
		TempDir:    tmp,
		PITRWindow: cfg.Snapshots.PITRWindow.D(),
		Log:        s.log,
	}
	l.f.Plan = planSynced(l.f, s.rules, s.policy, s.key)
	sched, err := newScheduler(schedulerConfig{Spec: cfg.Sync.Schedule, Run: l.snapshot, Log: s.log})
	if err != nil {
		return nil, err
	}
	l.sched = sched
	return l, nil
}

func (l *logicalSyncer) start(ctx context.Context) error {
	bg, err := l.life.Begin(ctx)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	l.mu.Lock()
	l.bg = bg
	l.mu.Unlock()
	if l.stopped() {
		l.f.setState(stateStopped, "")
		l.watchStopped()
		l.s.log.Info().Msg("logical sync stays stopped (pgtwin sync stop); `pgtwin sync now` follows again")
	} else if err := l.f.Start(ctx); err != nil {
		l.stop()
		return err
	}
	if err := l.sched.Start(ctx); err != nil {
		l.stop()
		return err
	}
	return nil
}

// stop ends a resync first (its half-built main is removed), then the
// schedule and the follower.
func (l *logicalSyncer) stop() {
	l.life.Stop()
	l.sched.Stop()
	l.f.Stop()
}

// snapshot is one `sync now` or scheduled run: a snapshot of main at a
// source transaction boundary, recording the source LSN.
func (l *logicalSyncer) snapshot(ctx context.Context) error {
	if l.stopped() {
		return errStopped
	}
	began := time.Now()
	err := l.f.Snapshot(ctx, func(ctx context.Context, lsn string) error {
		id, err := l.main.Snapshot(ctx, lsn)
		if err == nil {
			l.mu.Lock()
			l.lastSnap = id
			l.mu.Unlock()
		}
		return err
	})
	l.finished(time.Since(began), err)
	l.mu.Lock()
	l.lastErr, l.lastAt = err, time.Now().UTC()
	l.mu.Unlock()
	return err
}

func (l *logicalSyncer) trigger(ctx context.Context, req api.SyncRequest) (api.SyncStatus, error) {
	if err := l.resume(ctx, req.Resync); err != nil {
		return l.status(), err
	}
	if !req.Resync {
		err := l.sched.Request().Wait(ctx)
		return l.status(), err
	}
	l.mu.Lock()
	bg, busy := l.bg, l.resyncOn
	if bg == nil || bg.Err() != nil {
		l.mu.Unlock()
		return l.status(), errors.New("resync: the logical sync is not running")
	}
	l.resyncOn = true
	l.mu.Unlock()
	if busy {
		return l.status(), nil // joins the resync that runs
	}
	// Stopping and marking happen before the answer, so the status it
	// carries already shows the resync; the rebuild runs on.
	l.f.beginResync()
	started := l.life.Go(func() {
		err := l.f.resync(bg)
		l.mu.Lock()
		l.resyncOn = false
		l.mu.Unlock()
		if err != nil && !errors.Is(err, context.Canceled) {
			l.s.log.Error().Err(err).Msg("resync failed")
		}
	})
	if !started { // the daemon is stopping
		l.mu.Lock()
		l.resyncOn = false
		l.mu.Unlock()
		return l.status(), errors.New("resync: the logical sync is stopping")
	}
	return l.status(), nil
}

func (l *logicalSyncer) status() api.SyncStatus {
	fs := l.f.Status()
	st := api.SyncStatus{Mode: api.SyncModeLogical, State: fs.State, Step: fs.Step, LastError: fs.LastError,
		Slot: fs.Slot, ConfirmedLSN: fs.ConfirmedLSN, LagBytes: fs.LagBytes, LagSeconds: fs.LagSeconds,
		RetainedWAL: fs.RetainedWAL, SlotHealth: fs.SlotHealth, Rows: fs.Rows, Warnings: fs.Warnings}
	if w := retainedWarning(fs.Slot, fs.RetainedWAL, l.walWarn); w != "" {
		st.Warnings = append(append([]string(nil), st.Warnings...), w)
	}
	if !fs.StartedAt.IsZero() {
		t := fs.StartedAt.UTC()
		st.StartedAt = &t
	}
	if c := fs.Copy; c != nil {
		st.TablesDone, st.TablesTotal, st.Rows, st.Bytes, st.RateBytes = c.TablesDone, c.TablesTotal, c.Rows, c.Bytes, c.RateBytes
		st.ETASeconds = c.ETASeconds()
	}
	if n := l.sched.Next(); !n.IsZero() {
		st.NextRun = &n
	}
	l.mu.Lock()
	st.Snapshot = l.lastSnap
	if !l.lastAt.IsZero() {
		at := l.lastAt
		st.FinishedAt = &at
		if l.lastErr == nil {
			st.LastSuccess = &at
		} else if st.LastError == "" {
			st.LastError = l.lastErr.Error()
		}
	}
	l.mu.Unlock()
	return st
}
