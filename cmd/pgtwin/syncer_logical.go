package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/config"
	twinsync "github.com/pgtwin/pgtwin/sync"
	"github.com/pgtwin/pgtwin/twin"
	"github.com/pgtwin/pgtwin/twin/api"
)

// newLogicalSyncer wires logical mode: a Follower keeps main following the
// source; sync.schedule and `sync now` take snapshots at a source
// transaction boundary; `sync now --resync` rebuilds main from scratch.
func newLogicalSyncer(s *syncer, cfg config.Config, binDir, tmp string, tw *twin.Twin) (*syncer, error) {
	f := &twinsync.Follower{
		Source: s.src, Selection: s.sel, Parallel: cfg.Sync.Parallel,
		Plan: twinsync.AnonymizePlan(s.rules, s.policy, s.key, s.sel),
		TargetConn: func(ctx context.Context) (string, error) {
			inst, err := tw.MainInstance(ctx)
			if err != nil {
				return "", err
			}
			return inst.ConnString(inst.Superuser, tw.MainDatabase()), nil
		},
		Rebuild: func(ctx context.Context, fill func(context.Context, twinsync.Target) error) error {
			_, err := tw.ReplaceMain(ctx, func(ctx context.Context, inst *engine.Instance) error {
				return fill(ctx, twinsync.Target{ConnString: inst.ConnString(inst.Superuser, tw.MainDatabase()), BinDir: binDir})
			})
			return err
		},
		SpillDir: tmp,
		TempDir:  tmp,
		Log:      s.log,
	}
	var mu sync.Mutex
	var lastSnap string
	var lastErr error
	var lastAt time.Time
	met := tw.SyncMetrics()
	snapshot := func(ctx context.Context) error {
		began := time.Now()
		err := f.Snapshot(ctx, func(ctx context.Context, lsn string) error {
			snap, err := tw.TakeSnapshot(ctx, twin.SnapshotOptions{SourceLSN: lsn})
			if err == nil {
				mu.Lock()
				lastSnap = snap.ID
				mu.Unlock()
			}
			return err
		})
		met.SyncFinished(time.Since(began), err)
		mu.Lock()
		lastErr, lastAt = err, time.Now().UTC()
		mu.Unlock()
		return err
	}
	sched, err := twinsync.NewScheduler(twinsync.SchedulerConfig{Spec: cfg.Sync.Schedule, Run: snapshot, Log: s.log})
	if err != nil {
		return nil, err
	}
	var bg context.Context
	s.start = func(ctx context.Context) error {
		bg = context.WithoutCancel(ctx)
		if err := f.Start(ctx); err != nil {
			return err
		}
		return sched.Start(ctx)
	}
	s.stop = func() {
		sched.Stop()
		f.Stop()
	}
	s.status = func() api.SyncStatus {
		fs := f.Status()
		st := api.SyncStatus{Mode: "logical", State: fs.State, Step: fs.Step, LastError: fs.LastError,
			Slot: fs.Slot, ConfirmedLSN: fs.ConfirmedLSN, LagBytes: fs.LagBytes, LagSeconds: fs.LagSeconds,
			RetainedWAL: fs.RetainedWAL, SlotHealth: fs.SlotHealth, Rows: fs.Rows}
		if !fs.StartedAt.IsZero() {
			t := fs.StartedAt.UTC()
			st.StartedAt = &t
		}
		if c := fs.Copy; c != nil {
			st.TablesDone, st.TablesTotal, st.Rows, st.Bytes, st.RateBytes = c.TablesDone, c.TablesTotal, c.Rows, c.Bytes, c.RateBytes
			st.ETASeconds = c.ETASeconds()
		}
		if n := sched.Next(); !n.IsZero() {
			st.NextRun = &n
		}
		mu.Lock()
		st.Snapshot = lastSnap
		if !lastAt.IsZero() {
			at := lastAt
			st.FinishedAt = &at
			if lastErr == nil {
				st.LastSuccess = &at
			} else if st.LastError == "" {
				st.LastError = lastErr.Error()
			}
		}
		mu.Unlock()
		return st
	}
	s.trigger = func(ctx context.Context, req api.SyncRequest) (api.SyncStatus, error) {
		if req.Resync {
			go func() {
				if err := f.Resync(bg); err != nil && !errors.Is(err, context.Canceled) {
					s.log.Error().Err(err).Msg("resync failed")
				}
			}()
			time.Sleep(100 * time.Millisecond)
			return s.status(), nil
		}
		err := sched.Request().Wait(ctx)
		return s.status(), err
	}
	return s, nil
}
