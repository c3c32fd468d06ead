package twin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

func (t *Twin) sweepLoop(ctx context.Context) {
	tick := time.NewTicker(t.opts.SweepInterval)
	defer tick.Stop()
	for {
		t.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.kick:
		}
	}
}

// sweep deletes expired branches, then snapshots nothing needs.
func (t *Twin) sweep(ctx context.Context) {
	now := time.Now()
	t.mu.Lock()
	var expired []string
	for _, b := range t.branches {
		if b.ExpiresAt != nil && !b.ExpiresAt.After(now) && !b.Protected &&
			(b.State == stateReady || b.State == api.StateFailed || b.State == api.StateSuspended) && len(t.children(b.Name)) == 0 {
			expired = append(expired, b.Name)
		}
	}
	t.mu.Unlock()
	for _, name := range expired {
		if ctx.Err() != nil {
			return
		}
		if err := t.expire(ctx, name); err != nil {
			t.log.Error().Err(err).Str(logkey.Branch, name).Msg("could not delete expired branch")
		}
	}
	t.pruneSnapshots(ctx)
	t.trimArchive(ctx)
	t.revive(ctx)
}

// revive restarts main if it is not running, and records branches whose
// postmaster crashed or was killed as suspended: their listeners stay, so
// the next connection starts them (within branches.max_running). It also
// retries listeners that could not be opened.
func (t *Twin) revive(ctx context.Context) {
	// Main is left alone while a snapshot or a replacement holds it.
	if t.mainMu.TryLock() {
		if _, err := t.startMain(ctx); err != nil && !errors.Is(err, ErrNotReady) && ctx.Err() == nil {
			t.log.Error().Err(err).Msg("main is not running and could not be restarted")
		}
		t.mainMu.Unlock()
	}
	t.mu.Lock()
	var names []string
	for _, b := range t.branches {
		if b.State == stateReady {
			if _, ok := t.eng.Instance(b.ID); !ok {
				names = append(names, b.Name)
			}
		}
	}
	t.mu.Unlock()
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		rec, unlock := t.lockBranch(name)
		if rec == nil {
			unlock()
			continue
		}
		t.mu.Lock()
		id, port, state := rec.ID, rec.Port, rec.State
		t.mu.Unlock()
		if _, ok := t.eng.Instance(id); ok || state != stateReady {
			unlock()
			continue
		}
		t.markGone(rec, fmt.Sprintf("postmaster for port %d exited", port))
		unlock()
	}
	t.openProxies()
}

func (t *Twin) expire(ctx context.Context, name string) error {
	rec, unlock := t.lockBranch(name)
	defer unlock()
	t.mu.Lock()
	// Re-check under the lock: it may have been updated meanwhile.
	if rec == nil || rec.ExpiresAt == nil || rec.ExpiresAt.After(time.Now()) || rec.Protected || len(t.children(name)) > 0 {
		t.mu.Unlock()
		return nil
	}
	err := t.updateBranch(rec, func(r *branchRecord) { r.State = stateDeleting })
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if err := t.finishDelete(ctx, rec); err != nil {
		return err
	}
	t.log.Info().Str(logkey.Branch, name).Str(logkey.Owner, rec.Owner).Msg("expired branch deleted")
	return nil
}

// pruneSnapshots removes snapshots no branch uses: a branch's always, main's
// unless among the newest snapshots.keep (at least the newest one, which new
// branches are made from).
func (t *Twin) pruneSnapshots(ctx context.Context) {
	keep := t.cfg.Snapshots.Keep
	if keep < 1 {
		keep = 1
	}
	// Decided again for each snapshot as it is marked, since a branch may
	// pick one at any time.
	keepIt := func(s *snapshotRecord) bool {
		if s.State != stateReady && s.State != stateDeleting {
			return true
		}
		if len(t.snapshotUsers(s.ID)) > 0 || t.pitrAnchor() == s {
			return true
		}
		for i, m := range t.mainSnapshots() {
			if i >= keep {
				break
			}
			if m.ID == s.ID {
				return true
			}
		}
		return false
	}
	t.mu.Lock()
	var candidates []string
	for id, s := range t.snaps {
		if !keepIt(s) {
			candidates = append(candidates, id)
		}
	}
	t.mu.Unlock()
	for _, id := range candidates {
		if ctx.Err() != nil {
			return
		}
		if t.dropSnapshot(ctx, id, keepIt) {
			t.log.Info().Str(logkey.Snapshot, id).Msg("snapshot no longer needed; removed")
		}
	}
}
