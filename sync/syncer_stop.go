package twinsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/durable"
	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/internal/units"
	"github.com/pgtwin/pgtwin/twin/api"
)

// refusal is an error that says, as it stands, why a request does not fit
// the sync's state; the socket API answers it with 409 (twin's refusal).
type refusal string

func (r refusal) Error() string { return string(r) }
func (refusal) Refusal()        {}

// ErrDumpMode is returned by StopFollowing in dump mode: between runs there
// is nothing on the source to stop or drop.
var ErrDumpMode error = refusal("sync stop applies to logical mode; this daemon syncs in dump mode, which keeps nothing on the source between runs")

// errStopped is a snapshot's error while following is stopped.
var errStopped error = refusal("logical sync is stopped (pgtwin sync stop): run `pgtwin sync now` to follow the source again")

// errSlotDropped is `sync now` after `sync stop --drop-slot`: the twin can
// no longer catch up, only be copied again.
var errSlotDropped error = refusal("the replication slot was dropped by `pgtwin sync stop --drop-slot`, so the twin cannot catch up: run `pgtwin sync now --resync` to copy the source again and follow it")

// stopRecord is the file that keeps a stop across daemon restarts: a
// stopped twin must not quietly create a slot again at the next boot.
type stopRecord struct {
	At          time.Time `json:"at"`
	DroppedSlot bool      `json:"dropped_slot"`
}

// StopFollowing is POST /v1/sync/stop: logical mode stops following until
// the next `sync now`; with DropSlot the slot (and the publication, when
// pgtwin manages it) is dropped on the source, so the source stops keeping
// WAL for the twin.
func (s *Syncer) StopFollowing(ctx context.Context, req api.SyncStopRequest) (api.SyncStatus, error) {
	if s.logical == nil {
		return s.dumpStatus(), ErrDumpMode
	}
	err := s.logical.stopFollowing(ctx, req.DropSlot)
	return s.logical.status(), err
}

func (l *logicalSyncer) stopFollowing(ctx context.Context, dropSlot bool) error {
	l.mu.Lock()
	busy := l.resyncOn
	l.mu.Unlock()
	if busy {
		return refusal("sync stop: a resync is running; wait for `pgtwin sync status` to show streaming, then stop")
	}
	rec, _ := l.readStop()
	if rec == nil {
		rec = &stopRecord{}
	}
	rec.At = time.Now().UTC()
	// Recorded first: a crash between here and the drop leaves a stopped
	// twin, never one that follows with a slot it was told to give up.
	if err := l.writeStop(rec); err != nil {
		return err
	}
	l.f.Stop()
	l.f.setState(stateStopped, "")
	l.watchStopped()
	l.s.log.Info().Msg("logical sync stopped")
	if !dropSlot || rec.DroppedSlot {
		return nil
	}
	if err := l.f.dropSlotAndPublication(ctx); err != nil {
		return fmt.Errorf("sync stop: %w", err)
	}
	rec.DroppedSlot = true
	if err := l.writeStop(rec); err != nil {
		return err
	}
	l.s.log.Info().Str(logkey.Slot, l.f.Slot).Msg("replication slot dropped on the source")
	return nil
}

// resume undoes a stop for `sync now`: following starts again from the
// slot. After --drop-slot only a resync can.
func (l *logicalSyncer) resume(ctx context.Context, resync bool) error {
	rec, err := l.readStop()
	if err != nil || rec == nil {
		return err
	}
	if rec.DroppedSlot && !resync {
		return errSlotDropped
	}
	if err := durable.Remove(l.stopFile); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	l.unwatch()
	if resync {
		return nil // the resync starts following when main is rebuilt
	}
	if err := l.f.Start(l.bgContext(ctx)); err != nil {
		return err
	}
	// The snapshot `sync now` takes needs the stream: wait for it.
	for {
		switch st := l.f.Status(); st.State {
		case stateStreaming:
			return nil
		case stateFailed, stateNeedsResync:
			return fmt.Errorf("follow again: %s: %s", st.State, st.LastError)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchStopped keeps reading the slot's lag and retained WAL while
// following is stopped: the slot still holds WAL on the source, and status
// must show how much.
func (l *logicalSyncer) watchStopped() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bg == nil || l.watchCancel != nil {
		return
	}
	l.f.defaults() // not started since the daemon began, when it stayed stopped
	ctx, cancel := context.WithCancel(l.bg)
	if l.life.Go(func() { l.f.monitor(ctx) }) {
		l.watchCancel = cancel
	} else {
		cancel()
	}
}

func (l *logicalSyncer) unwatch() {
	l.mu.Lock()
	cancel := l.watchCancel
	l.watchCancel = nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (l *logicalSyncer) stopped() bool {
	rec, _ := l.readStop()
	return rec != nil
}

func (l *logicalSyncer) bgContext(ctx context.Context) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bg != nil {
		return l.bg
	}
	return ctx
}

func (l *logicalSyncer) readStop() (*stopRecord, error) {
	if l.stopFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(l.stopFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	var rec stopRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("sync: %s: %w", l.stopFile, err)
	}
	return &rec, nil
}

func (l *logicalSyncer) writeStop(rec *stopRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(l.stopFile), 0o700); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := durable.WriteFile(l.stopFile, b, 0o600); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// dropSlotAndPublication is `sync stop --drop-slot` on the source: the slot,
// and the publication when pgtwin manages it (a configured one belongs to
// the source's admin and stays).
func (f *follower) dropSlotAndPublication(ctx context.Context) error {
	f.defaults()
	conn, err := f.dumper().connectSource(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := f.dropSlotSQL(ctx, conn); err != nil {
		return err
	}
	if f.UsePublication {
		return nil
	}
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{f.Publication}.Sanitize()); err != nil {
		return fmt.Errorf("drop publication %s: %w", f.Publication, redact(err))
	}
	return nil
}

// retainedWarning is sync status's warning when the slot holds more WAL on
// the source than sync.retained_wal_warning: it is the production server's
// disk that fills.
func retainedWarning(slot string, retained *int64, limit int64) string {
	if retained == nil || limit <= 0 || *retained <= limit {
		return ""
	}
	return fmt.Sprintf("replication slot %s holds %s of WAL on the source (over sync.retained_wal_warning, %s): let the twin catch up, or if this twin is no longer needed, run `pgtwin sync stop --drop-slot`",
		slot, units.IEC(*retained), units.IEC(limit))
}
