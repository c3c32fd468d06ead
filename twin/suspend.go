package twin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// errBusy is a suspend skipped because something else holds the branch.
var errBusy = errors.New("branch busy")

// idleLoop suspends branches that have had no client connection for
// branches.idle_suspend.
func (t *Twin) idleLoop(ctx context.Context) {
	idle := t.cfg.Branches.IdleSuspend.D()
	if idle <= 0 {
		return
	}
	tick := time.NewTicker(min(max(idle/4, 100*time.Millisecond), 30*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.suspendIdle(ctx, idle)
	}
}

func (t *Twin) suspendIdle(ctx context.Context, idle time.Duration) {
	type cand struct {
		rec *branchRecord
		id  string
	}
	now := time.Now()
	t.mu.Lock()
	var cands []cand
	for _, b := range t.branches {
		if b.State == stateReady && t.fleet.running[b.ID] && now.Sub(t.fleet.upSince[b.ID]) >= idle && t.fleet.proxies[b.ID] != nil {
			cands = append(cands, cand{b, b.ID})
		}
	}
	t.mu.Unlock()
	for _, c := range cands {
		if ctx.Err() != nil {
			return
		}
		t.mu.Lock()
		p := t.fleet.proxies[c.id]
		m := t.lockFor(c.id)
		t.mu.Unlock()
		if p == nil {
			continue
		}
		_, err := p.SuspendIdle(idle, func() error {
			// Never wait for the lock while holding the proxy's gate: a
			// reset holding it may be slow, and clients queue on the gate.
			if !m.TryLock() {
				return errBusy
			}
			defer m.Unlock()
			return t.suspendLocked(ctx, c.rec, "idle for "+idle.String())
		})
		if err != nil && !errors.Is(err, errBusy) && ctx.Err() == nil {
			t.log.Error().Err(err).Str(logkey.Branch, c.rec.Name).Msg("could not suspend idle branch")
		}
	}
}

// SuspendBranch stops a branch's instance now; its URL keeps working and
// the next connection starts it again. Open sessions are ended.
func (t *Twin) SuspendBranch(ctx context.Context, c Caller, name string) (api.Branch, error) {
	ctx = context.WithoutCancel(ctx)
	rec, unlock := t.lockBranch(name)
	defer unlock()
	t.mu.Lock()
	if rec == nil || !c.sees(rec) {
		t.mu.Unlock()
		return api.Branch{}, notFound(name)
	}
	st := rec.State
	t.mu.Unlock()
	switch st {
	case api.StateSuspended:
	case stateReady:
		if err := t.suspendLocked(ctx, rec, "asked by "+c.User); err != nil {
			return api.Branch{}, err
		}
	default:
		return api.Branch{}, refuse(ErrConflict, "branch %q is %s; only a ready branch can be suspended", name, st)
	}
	return t.branchView(ctx, c, rec, true), nil
}

// ResumeBranch starts a suspended branch's instance and returns once it
// accepts connections.
func (t *Twin) ResumeBranch(ctx context.Context, c Caller, name string) (api.Branch, error) {
	ctx = context.WithoutCancel(ctx)
	rec, unlock := t.lockBranch(name)
	defer unlock()
	t.mu.Lock()
	if rec == nil || !c.sees(rec) {
		t.mu.Unlock()
		return api.Branch{}, notFound(name)
	}
	st, reason := rec.State, rec.Error
	t.mu.Unlock()
	if st != stateReady && st != api.StateSuspended {
		return api.Branch{}, refuse(ErrConflict, "branch %q is %s (%s); run pgtwin branches reset %[1]s", name, st, reason)
	}
	if _, err := t.startLocked(ctx, rec, "resume asked by "+c.User); err != nil {
		var te *Error
		if errors.As(err, &te) {
			return api.Branch{}, err
		}
		return api.Branch{}, fmt.Errorf("branch %q %w", name, err)
	}
	return t.branchView(ctx, c, rec, true), nil
}

// settleFleet runs after reconcile: branches recorded suspended are made
// sure to be stopped, ready branches whose instance runs are counted
// running, and ready branches whose postmaster is gone are recorded
// suspended (a restart never starts hundreds of instances; a connection
// starts each as needed). Then every branch gets its listener.
func (t *Twin) settleFleet(ctx context.Context) {
	t.mu.Lock()
	recs := make([]*branchRecord, 0, len(t.branches))
	for _, b := range t.branches {
		recs = append(recs, b)
	}
	t.mu.Unlock()
	for _, rec := range recs {
		t.mu.Lock()
		id, name, st := rec.ID, rec.Name, rec.State
		t.mu.Unlock()
		_, running := t.eng.Instance(id)
		switch {
		case st == api.StateSuspended && running:
			t.log.Warn().Str(logkey.Branch, name).Msg("suspended branch was running; stopping it")
			if err := t.eng.Stop(ctx, id); err != nil {
				t.log.Error().Err(err).Str(logkey.Branch, name).Msg("could not stop suspended branch")
				t.claimRunning(id)
			}
		case st == stateReady && running:
			t.claimRunning(id)
		case st == stateReady:
			t.markGone(rec, "not running at start")
		}
	}
	t.openProxies()
}

// claimRunning counts an instance found running, whatever the cap: the
// next starts make room.
func (t *Twin) claimRunning(id string) {
	t.mu.Lock()
	t.fleet.running[id] = true
	t.fleet.upSince[id] = time.Now()
	t.mu.Unlock()
}

// markGone records a ready branch whose postmaster is gone as suspended, so
// the next connection starts it.
func (t *Twin) markGone(rec *branchRecord, why string) {
	t.mu.Lock()
	err := t.updateBranch(rec, func(r *branchRecord) { r.State = api.StateSuspended })
	id, name := rec.ID, rec.Name
	t.mu.Unlock()
	if err != nil {
		t.log.Error().Err(err).Str(logkey.Branch, name).Msg("could not record branch suspended")
		return
	}
	t.releaseSlot(id)
	t.log.Warn().Str(logkey.Branch, name).Str(logkey.Reason, why).Msg("branch postmaster is gone; recorded suspended, the next connection starts it")
}
