package twinsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// checkSlot fails with ErrNeedsResync when the slot is gone or lost its WAL
// (on a source of version, server_version_num).
func (f *follower) checkSlot(ctx context.Context, src *pgx.Conn, version int) error {
	var confirmed, walStatus *string
	var lag, retained *int64
	err := src.QueryRow(ctx, slotSQL(version), f.Slot).Scan(&confirmed, &walStatus, &lag, &retained)
	if errors.Is(err, pgx.ErrNoRows) {
		f.setHealth("missing")
		return fmt.Errorf("replication slot %s does not exist on the source: %w", f.Slot, errNeedsResync)
	}
	if err != nil {
		return fmt.Errorf("read slot %s: %w", f.Slot, redact(err))
	}
	if walStatus != nil && *walStatus == "lost" {
		f.setHealth("lost")
		return fmt.Errorf("replication slot %s lost WAL it needed on the source (max_slot_wal_keep_size): %w", f.Slot, errNeedsResync)
	}
	return nil
}

func (f *follower) setHealth(h string) {
	f.mu.Lock()
	f.st.SlotHealth = h
	f.mu.Unlock()
}

func (f *follower) setPending(t time.Time) {
	f.mu.Lock()
	f.pendingSince = t
	f.mu.Unlock()
}

// monitor reads the slot's health from the source every StatusInterval.
func (f *follower) monitor(ctx context.Context) {
	var conn *pgx.Conn
	var version int
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	t := time.NewTicker(f.StatusInterval)
	defer t.Stop()
	for {
		if conn == nil {
			if cfg, err := f.Source.connConfig(); err == nil {
				cfg.RuntimeParams["application_name"] = "pgtwin monitor"
				conn, _ = pgx.ConnectConfig(ctx, cfg)
			}
			if conn != nil {
				var err error
				if version, err = f.sourceVersion(ctx, conn); err != nil {
					conn.Close(context.Background())
					conn = nil
				}
			}
		}
		if conn != nil {
			if err := f.readSlot(ctx, conn, version); err != nil {
				conn.Close(context.Background())
				conn = nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *follower) readSlot(ctx context.Context, conn *pgx.Conn, version int) error {
	var confirmed, walStatus *string
	var lag, retained *int64
	err := conn.QueryRow(ctx, slotSQL(version), f.Slot).Scan(&confirmed, &walStatus, &lag, &retained)
	f.mu.Lock()
	defer f.mu.Unlock()
	if errors.Is(err, pgx.ErrNoRows) {
		f.st.SlotHealth = "missing"
		f.st.LagBytes, f.st.RetainedWAL, f.st.ConfirmedLSN = nil, nil, ""
		return nil
	}
	if err != nil {
		return err
	}
	f.st.ConfirmedLSN = ""
	if confirmed != nil {
		f.st.ConfirmedLSN = *confirmed
	}
	f.st.SlotHealth = ""
	if walStatus != nil {
		f.st.SlotHealth = *walStatus
	}
	f.st.LagBytes, f.st.RetainedWAL = lag, retained
	secs := 0.0
	switch {
	case !f.pendingSince.IsZero():
		secs = time.Since(f.pendingSince).Seconds()
	case !f.haltedAt.IsZero() && lag != nil && *lag > 0:
		secs = time.Since(f.haltedAt).Seconds()
	}
	f.st.LagSeconds = &secs
	return nil
}

// pauseReq asks the apply loop to stop at a transaction boundary with
// everything durable, and to wait until resume closes.
type pauseReq struct {
	ready  chan pauseResult
	resume chan struct{}
}

type pauseResult struct {
	lsn pgoutput.LSN
	err error
}

// Snapshot lets the daemon snapshot main at a source transaction boundary:
// the follower commits what it has applied, copies sequence values from
// the source, and holds apply while take runs with the source LSN the twin
// now reflects (for twin.TakeSnapshot's SourceLSN). It returns take's error.
func (f *follower) Snapshot(ctx context.Context, take func(ctx context.Context, sourceLSN string) error) error {
	f.mu.Lock()
	ch, done, state := f.pause, f.done, f.st.State
	f.mu.Unlock()
	if ch == nil || state != stateStreaming {
		return fmt.Errorf("snapshot: %w (state %s)", errNotStreaming, state)
	}
	// "Now" means the source as it is now: wait (a while) until the twin
	// has everything the source had written when asked.
	if target, err := f.sourceWALEnd(ctx); err == nil {
		wctx, cancel := context.WithTimeout(ctx, f.CatchUpTimeout)
		werr := f.WaitPassed(wctx, target)
		cancel()
		if werr != nil && ctx.Err() == nil {
			log := f.logger()
			log.Warn().Str(logkey.LSN, target.String()).Msg("snapshot: the twin did not catch up with the source in time; taking what it has")
		}
	}
	req := &pauseReq{ready: make(chan pauseResult, 1), resume: make(chan struct{})}
	defer close(req.resume)
	select {
	case ch <- req:
	case <-done:
		return fmt.Errorf("snapshot: %w", errNotStreaming)
	case <-ctx.Done():
		return ctx.Err()
	}
	var res pauseResult
	select {
	case res = <-req.ready:
	case <-done:
		return fmt.Errorf("snapshot: %w", errNotStreaming)
	case <-ctx.Done():
		return ctx.Err()
	}
	if res.err != nil {
		return fmt.Errorf("snapshot: %w", res.err)
	}
	return take(ctx, res.lsn.String())
}

func (s *session) servePause(ctx context.Context, req *pauseReq) error {
	err := s.commitGroup(ctx)
	if err == nil {
		err = s.syncSequences(ctx)
	}
	req.ready <- pauseResult{lsn: s.acked, err: err}
	if err != nil {
		return err
	}
	select {
	case <-req.resume:
	case <-ctx.Done():
	}
	return nil
}

// sourceWALEnd is the source's current WAL position.
func (f *follower) sourceWALEnd(ctx context.Context) (pgoutput.LSN, error) {
	conn, err := f.dumper().connectSource(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var s string
	if err := conn.QueryRow(ctx, "SELECT pg_catalog.pg_current_wal_lsn()::text").Scan(&s); err != nil {
		return 0, err
	}
	return pgoutput.ParseLSN(s)
}
