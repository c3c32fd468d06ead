package twinsync

// Logical mode. The Syncer (syncer_logical.go) runs a follower over Main:
//
//	f := &follower{
//		Source: ..., Selection: ..., Parallel: cfg.Sync.Parallel,
//		Plan:       anonymizePlan(rules, policy, key, sel),
//		TargetConn: main.ConnString, // follows main across Replace and restarts
//		Rebuild:    ... main.Replace(ctx, fill) ...,
//		SpillDir:   ..., TempDir: ...,
//	}
//	f.Start(ctx)          // fills main on first start, then follows
//	f.Snapshot(ctx, take) // sync now, and on sync.schedule: take gets the source LSN
//	f.Status()            // sync status
//	f.Stop(); f.DropSlot(ctx)
//	f.Resync(ctx)         // sync now --resync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/internal/startstop"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
	"github.com/pgtwin/pgtwin/twin/api"
)

// follower states, as `pgtwin sync status` shows them.
const (
	stateInitializing = api.SyncInitializing // publication, slot and initial copy
	stateStreaming    = api.SyncStreaming
	stateStopped      = api.SyncStopped
	stateFailed       = api.SyncFailed
	stateNeedsResync  = api.SyncNeedsResync
)

// errNeedsResync is returned (wrapped) when following cannot go on from
// where the twin is: the slot is gone or lost its WAL, or the source schema
// changed in a way that cannot be applied. `pgtwin sync now --resync`
// starts over.
var errNeedsResync = errors.New("the twin must be rebuilt from the source (pgtwin sync now --resync)")

// errNotStreaming is returned by Snapshot when the follower is not applying.
var errNotStreaming = errors.New("logical sync is not streaming")

// defaultSlot and defaultPublication name what the follower creates on the
// source.
const (
	defaultSlot        = "pgtwin"
	defaultPublication = "pgtwin"
)

// follower runs logical-mode sync: it keeps the main twin following the
// source through a pgoutput slot, masking every change before it is
// applied. Set the fields before Start and leave them alone after.
type follower struct {
	Source    source
	Selection selection
	Parallel  int // initial copy: tables at once; default 4

	// Plan returns the masker, as Dumper.Plan does. It is called again when
	// a source table gains a column, so a column the plan does not cover
	// stops apply before any of its values is written.
	Plan func(ctx context.Context, source *pgx.Conn) (masker, error)

	// TargetConn returns a superuser connection string for main's database.
	// It is called on every (re)connect, so it may follow main across
	// ReplaceMain and restarts.
	TargetConn func(ctx context.Context) (string, error)

	// Rebuild replaces main with a fresh, empty database and calls fill on
	// it; the daemon wraps twin.ReplaceMain. Start calls it when main has
	// never been filled by this follower, Resync always.
	Rebuild func(ctx context.Context, fill func(ctx context.Context, tgt target) error) error

	Slot        string // default DefaultSlot
	Publication string // default DefaultPublication
	// UsePublication says Publication exists on the source and is used as
	// it is: never created, altered or dropped; selected tables outside it
	// are not synced (warnings). Otherwise pgtwin manages Publication.
	UsePublication bool
	// SpillDir holds streamed transactions beyond SpillMemory, masked, in
	// files of mode 0600 removed after use; put it under daemon.data_dir.
	SpillDir    string
	SpillMemory int64 // bytes buffered in memory per stream; default 64 MiB

	// SequenceInterval is how often sequence values are copied from the
	// source; default one minute.
	SequenceInterval time.Duration
	// StatusInterval is how often the slot's health is read from the
	// source; default 10 s.
	StatusInterval time.Duration
	// CatchUpTimeout bounds how long Snapshot waits for the twin to catch
	// up with the source's position at the time of the call; default 2 min.
	CatchUpTimeout time.Duration
	// PITRWindow > 0 records each twin transaction's source commit times
	// for exact --at (logical_pitr.go).
	PITRWindow time.Duration

	Backoff backoff // reconnect waits; Attempts is ignored (retries forever)
	Log     zerolog.Logger
	TempDir string // initial copy's schema archive (DDL only)

	life    startstop.Base
	mu      sync.Mutex
	done    chan struct{} // closed when the worker ends
	st      followerStatus
	applied pgoutput.LSN // durable in the twin (progress table)
	passed  pgoutput.LSN // applied, or idle-acknowledged beyond
	waiters []chan struct{}
	pause   chan *pauseReq
	pitr    pitrState // the open group's commit times (logical_pitr.go)
	// fault, when set (tests only), is called at points where a crash is
	// interesting: "commit" after the twin committed, before the ack;
	// "stream" after a change of a streamed transaction was buffered.
	fault func(point string)
	// treatAsVersion, when set (tests only), is the server_version_num the
	// follower takes the source for, to run an older source's protocol
	// (proto_version 1 below 14) against the PostgreSQL at hand.
	treatAsVersion int
	// pendingSince is the source commit time of the oldest transaction
	// received and not yet durable in the twin (zero: none).
	pendingSince time.Time
	// haltedAt is when following last left the streaming state (failed,
	// needs-resync, stopped): lag in seconds counts from it while nothing
	// is pending, for the source goes on writing.
	haltedAt time.Time
	// synced is Selection narrowed to a configured publication's tables
	// (nil: not read yet); warnings name what it leaves out.
	synced   *selection
	warnings []string
	// tableWarnings are per-table states of schema-change handling (a
	// table being copied again), by quoted name.
	tableWarnings map[string]string
}

// followerStatus is what `sync status` shows in logical mode; the fields
// map onto api.SyncStatus.
type followerStatus struct {
	State        string
	Step         string // initial copy step, while initializing
	Slot         string
	ConfirmedLSN string // the slot's confirmed_flush_lsn on the source
	AppliedLSN   string // end of the last transaction committed in the twin
	LagBytes     *int64
	LagSeconds   *float64
	RetainedWAL  *int64 // WAL the slot keeps on the source
	SlotHealth   string // reserved, extended, unreserved, lost, missing
	LastError    string
	StartedAt    time.Time
	LastApplied  time.Time // when the twin last committed a source transaction
	Transactions int64     // source transactions applied since start
	Rows         int64     // row changes applied since start
	Missing      int64     // updates/deletes that found no row (should be 0)
	Streamed     int64     // large transactions received in streamed segments
	SpilledBytes int64     // masked changes of streamed transactions written to SpillDir
	Copy         *stats    // initial copy progress, while initializing
	Warnings     []string  // selected tables a configured publication leaves out, and the like
}

func (f *follower) defaults() {
	if f.Slot == "" {
		f.Slot = defaultSlot
	}
	if f.Publication == "" {
		f.Publication = defaultPublication
	}
	if f.Parallel <= 0 {
		f.Parallel = 4
	}
	if f.SpillMemory <= 0 {
		f.SpillMemory = 64 << 20
	}
	if f.SequenceInterval <= 0 {
		f.SequenceInterval = time.Minute
	}
	if f.CatchUpTimeout <= 0 {
		f.CatchUpTimeout = 2 * time.Minute
	}
	if f.StatusInterval <= 0 {
		f.StatusInterval = 10 * time.Second
	}
}

func (f *follower) logger() zerolog.Logger {
	return f.Log.With().Str(logkey.Component, "logical").Logger()
}

// Start begins following in the background: it fills main first when it
// was never filled (Rebuild), then streams. It returns at once; Status
// tells how it goes. Starting while started is an error; after Stop it
// may start again.
func (f *follower) Start(ctx context.Context) error {
	f.defaults()
	if f.Plan == nil {
		return errors.New("logical sync: no masking plan: refusing to apply unmasked rows")
	}
	if f.TargetConn == nil {
		return errors.New("logical sync: no target connection")
	}
	ctx, err := f.life.Begin(ctx)
	if err != nil {
		return fmt.Errorf("logical sync: %w", err)
	}
	f.mu.Lock()
	f.done = make(chan struct{})
	f.pause = make(chan *pauseReq)
	f.st = followerStatus{State: stateInitializing, Slot: f.Slot, StartedAt: time.Now()}
	done := f.done
	f.mu.Unlock()
	if !f.life.Go(func() {
		defer close(done)
		f.run(ctx)
	}) {
		close(done) // a Stop came between
		return fmt.Errorf("logical sync: %w", errNotStreaming)
	}
	return nil
}

// Stop stops following and waits for the worker to end; the slot stays.
// It is safe to call more than once, and before Start.
func (f *follower) Stop() {
	if !f.life.Stop() {
		return
	}
	f.mu.Lock()
	if f.st.State == stateStreaming || f.st.State == stateInitializing {
		f.st.State = stateStopped
	}
	f.mu.Unlock()
}

// Status returns the current state.
func (f *follower) Status() followerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	if st.State == "" {
		st.State = stateStopped
	}
	if st.Slot == "" {
		st.Slot = f.Slot
	}
	if f.applied != 0 {
		st.AppliedLSN = f.applied.String()
	}
	st.Warnings = f.warnings
	if len(f.tableWarnings) > 0 {
		st.Warnings = append(append([]string(nil), f.warnings...), sortedValues(f.tableWarnings)...)
	}
	return st
}

// Applied is the end LSN of the last source transaction durable in the twin.
func (f *follower) Applied() pgoutput.LSN {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// WaitPassed waits until every source transaction that committed before
// lsn is durable in the twin (e.g. lsn of a pg_logical_emit_message barrier).
func (f *follower) WaitPassed(ctx context.Context, lsn pgoutput.LSN) error {
	for {
		f.mu.Lock()
		if f.passed >= lsn {
			f.mu.Unlock()
			return nil
		}
		st := f.st.State
		ch := make(chan struct{})
		f.waiters = append(f.waiters, ch)
		f.mu.Unlock()
		if st == stateFailed || st == stateNeedsResync {
			return fmt.Errorf("wait for %s: follower %s: %s", lsn, st, f.Status().LastError)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-time.After(time.Second):
		}
	}
}

// markApplied records what the twin made durable (and what was passed).
func (f *follower) markApplied(applied, passed pgoutput.LSN, txns, rows int64) {
	f.mu.Lock()
	if applied > f.applied {
		f.applied = applied
		f.st.LastApplied = time.Now()
	}
	if passed < f.applied {
		passed = f.applied
	}
	if passed > f.passed {
		f.passed = passed
	}
	f.st.Transactions += txns
	f.st.Rows += rows
	ws := f.waiters
	f.waiters = nil
	f.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

func (f *follower) setState(state, lastErr string) {
	f.mu.Lock()
	switch {
	case state == stateStreaming || state == stateInitializing:
		f.haltedAt = time.Time{}
	case f.haltedAt.IsZero():
		f.haltedAt = time.Now()
	}
	f.st.State = state
	if lastErr != "" || state == stateStreaming {
		f.st.LastError = lastErr
	}
	ws := f.waiters
	f.waiters = nil
	f.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

func (f *follower) setErr(err error) {
	f.mu.Lock()
	f.st.LastError = err.Error()
	f.mu.Unlock()
}

// run is the worker: fill main if needed, then stream until stopped or a
// fault that needs a person.
func (f *follower) run(ctx context.Context) {
	log := f.logger()
	err := f.follow(ctx)
	if ctx.Err() != nil {
		f.setState(stateStopped, "")
		return
	}
	state := stateFailed
	if errors.Is(err, errNeedsResync) {
		state = stateNeedsResync
	}
	log.Error().Err(err).Str(logkey.Status, state).Msg("logical sync stopped")
	f.setState(state, err.Error())
}
