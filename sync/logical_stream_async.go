package twinsync

import (
	"context"
	"os"
	"time"

	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// asyncCommitOff turns background group commits off (measuring aid:
// PGTWIN_APPLY_ASYNC=0 runs every commit in the foreground, as before).
var asyncCommitOff = os.Getenv("PGTWIN_APPLY_ASYNC") == "0"

// inflightGroup is a group whose commit runs in the background
// (logical_apply_async.go): what its commit makes durable.
type inflightGroup struct {
	lsn        pgoutput.LSN // the progress it writes
	txns, rows int64
}

// commitGroupAsync commits the open group in the background while the
// stream goes on, where the commit's bookkeeping can wait: no table is
// detached (re-copies, catch-ups: their positions are saved with the
// commit) and no pitr map is kept (its row takes the group's xid). With
// next, the next group is opened by the same job. Otherwise it is
// commitGroup.
func (s *session) commitGroupAsync(ctx context.Context, next bool) error {
	if !s.ap.open {
		return nil
	}
	if asyncCommitOff || s.f.PITRWindow > 0 || len(s.ddl.det) > 0 || s.copying != nil {
		return s.commitGroup(ctx)
	}
	if err := s.ap.recordCommit(ctx, s.f.Slot, s.lastEnd, next); err != nil {
		return err
	}
	// The group before is done by now, or is waited for.
	if err := s.settle(ctx); err != nil {
		return err
	}
	if err := s.ap.submit(ctx); err != nil {
		return err
	}
	s.inflight = &inflightGroup{lsn: s.lastEnd, txns: s.groupTxns, rows: s.groupRows}
	if s.tm.on {
		s.tm.groups++
	}
	s.groupTxns, s.groupRows = 0, 0
	s.groupAt = time.Now()
	s.pending = time.Time{} // the group in flight keeps the follower's pendingSince
	return nil
}

// settle waits for the group committing in the background, if any, and
// takes it as durable: only now may the source hear of it.
func (s *session) settle(context.Context) error {
	g := s.inflight
	if g == nil {
		return nil
	}
	if err := s.ap.wait(); err != nil {
		return err
	}
	s.inflight = nil
	if s.f.fault != nil {
		s.f.fault("commit")
	}
	s.durable = max(s.durable, g.lsn)
	s.acked = max(s.acked, s.capAck(max(s.durable, s.idleAt)))
	s.f.markApplied(s.complete(), s.acked, g.txns, g.rows)
	s.f.mu.Lock()
	s.f.st.Missing = s.ap.missing
	s.f.mu.Unlock()
	s.f.setPending(s.pending)
	return nil
}

// settleIfDone settles a background commit that has finished, without
// waiting.
func (s *session) settleIfDone(ctx context.Context) error {
	if s.inflight == nil || !s.ap.jobDone() {
		return nil
	}
	return s.settle(ctx)
}
