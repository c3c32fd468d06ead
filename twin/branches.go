package twin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// GetBranch is one branch as caller c sees it.
func (t *Twin) GetBranch(ctx context.Context, c Caller, name string) (api.Branch, error) {
	t.mu.Lock()
	rec := t.branches[name]
	if rec == nil || !c.sees(rec) {
		t.mu.Unlock()
		return api.Branch{}, notFound(name)
	}
	t.mu.Unlock()
	return t.branchView(ctx, c, rec, true), nil
}

// ListBranches are the branches c sees, by name.
func (t *Twin) ListBranches(ctx context.Context, c Caller) []api.Branch {
	t.mu.Lock()
	var recs []*branchRecord
	for _, r := range t.branches {
		if c.sees(r) {
			recs = append(recs, r)
		}
	}
	t.mu.Unlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	out := make([]api.Branch, len(recs))
	ids := make([]string, len(recs))
	for i, r := range recs {
		out[i] = t.branchView(ctx, c, r, false)
		t.mu.Lock()
		ids[i] = r.ID
		t.mu.Unlock()
	}
	// changed_bytes is measured a few at a time (each may take a while) for
	// at most listUsageBudget; with hundreds of branches the rest show the
	// last measurement, and the measuring goes on in the background.
	// One pass at a time: lists that come while one measures use what it
	// has measured so far.
	done := make(chan struct{})
	if !t.fleet.measuring.CompareAndSwap(false, true) {
		close(done)
	} else {
		go t.measureAll(ctx, recs, done)
	}
	select {
	case <-done:
	case <-time.After(listUsageBudget):
	}
	t.mu.Lock()
	for i := range out {
		if u, ok := t.usage[ids[i]]; ok && (out[i].State == stateReady || out[i].State == api.StateSuspended) {
			out[i].ChangedBytes = u.bytes
		}
	}
	t.mu.Unlock()
	return out
}

// measureAll refreshes changed_bytes of recs into the cache, then closes
// done and clears fleet.measuring.
func (t *Twin) measureAll(ctx context.Context, recs []*branchRecord, done chan struct{}) {
	defer t.fleet.measuring.Store(false)
	defer close(done)
	ctx = context.WithoutCancel(ctx)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			t.mu.Lock()
			c := *r
			t.mu.Unlock()
			if c.State == stateReady || c.State == api.StateSuspended {
				t.changedBytes(ctx, c)
			}
			<-sem
		}()
	}
	wg.Wait()
}

// listUsageBudget bounds how long a list waits for changed_bytes.
const listUsageBudget = 300 * time.Millisecond

// replaceable says why c may not throw branch rec (asked for as name) away
// for a fresh clone (reset, restore), or nil. Call with t.mu held.
func replaceable(c Caller, rec *branchRecord, name string) error {
	if rec == nil || !c.sees(rec) {
		return notFound(name)
	}
	if rec.Protected {
		return refuse(ErrConflict, "branch %q is protected; run pgtwin branches unprotect %[1]s first", name)
	}
	if rec.State != stateReady && rec.State != api.StateFailed && rec.State != api.StateSuspended {
		return refuse(ErrConflict, "branch %q is %s; wait until it is ready", name, rec.State)
	}
	return nil
}

// ResetBranch throws the branch's changes away: it becomes a fresh clone of
// its parent's newest state, on the same port with the same role and
// password, and is ready when this returns.
func (t *Twin) ResetBranch(ctx context.Context, c Caller, name string) (api.Branch, error) {
	ctx = context.WithoutCancel(ctx)
	rec, unlock := t.lockBranch(name)
	defer unlock()
	t.mu.Lock()
	if err := replaceable(c, rec, name); err != nil {
		t.mu.Unlock()
		return api.Branch{}, err
	}
	wasSuspended := rec.State == api.StateSuspended
	t.mu.Unlock()
	start := time.Now()
	if err := t.reset(ctx, rec, nil); err != nil {
		return api.Branch{}, err
	}
	// A suspended branch stays suspended: the reset ran its instance only
	// to set up its role.
	if wasSuspended {
		if err := t.suspendLocked(ctx, rec, "it was suspended before its reset"); err != nil {
			t.log.Error().Err(err).Str(logkey.Branch, name).Msg("could not suspend the branch again after its reset")
		}
	}
	t.met.observeReset(time.Since(start))
	t.log.Info().Str(logkey.Branch, name).Str(logkey.Snapshot, rec.Snapshot).Dur(logkey.Duration, time.Since(start)).Msg("branch reset")
	t.kickSweeper()
	t.mu.Lock()
	delete(t.usage, rec.ID)
	t.mu.Unlock()
	return t.branchView(ctx, c, rec, false), nil
}

// reset records the reset target, then rebuilds the branch: from its
// parent's newest state, or with at (a restore) the newest not newer than
// at. It also rolls a reset or restore interrupted by a crash forward. Call
// with the branch's lock held.
func (t *Twin) reset(ctx context.Context, rec *branchRecord, at *time.Time) error {
	var plan *pitrPlan
	if at != nil && rec.Parent == MainName {
		plan = t.planAt(ctx, *at)
	}
	t.mu.Lock()
	var pending *snapshotRecord
	var target string
	var tgt *pitrTarget
	if at != nil {
		snap, pt, err := t.pickAtPlan(rec.Parent, *at, plan)
		if err != nil {
			t.mu.Unlock()
			return err
		}
		target, tgt = snap.ID, pt
	} else if rec.Parent == MainName {
		snap, err := t.pickMainSnapshot(time.Time{}, false)
		if err != nil {
			t.mu.Unlock()
			return err
		}
		target = snap.ID
	} else {
		p := t.branches[rec.Parent]
		if p == nil {
			t.mu.Unlock()
			return refuse(ErrConflict, "parent branch %q is gone; delete this branch instead", rec.Parent)
		}
		var err error
		if pending, err = t.newSnapshotRecord(p.Name, SnapshotOptions{}); err != nil {
			t.mu.Unlock()
			return err
		}
		target = pending.ID
	}
	err := t.updateBranch(rec, func(r *branchRecord) {
		r.State = api.StateResetting
		r.Snapshot = target
		r.Error = ""
		r.ReadOnly = nil
		r.At = at
		r.PITR = tgt
	})
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if pending != nil {
		err = t.snapshotParent(ctx, rec.Parent, pending.ID)
	}
	if err == nil {
		err = t.materialize(ctx, rec)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		delete(t.fleet.running, rec.ID) // what instance there was is stopped
		delete(t.fleet.upSince, rec.ID)
		t.log.Error().Err(err).Str(logkey.Branch, rec.Name).Msg("reset failed")
		if uerr := t.updateBranch(rec, func(r *branchRecord) { r.State = api.StateFailed; r.Error = err.Error() }); uerr != nil {
			t.log.Error().Err(uerr).Str(logkey.Branch, rec.Name).Msg("could not record failed reset")
		}
		return fmt.Errorf("reset %s: %w", rec.Name, err)
	}
	return t.updateBranch(rec, func(r *branchRecord) { r.State = stateReady })
}

// DeleteBranch stops and removes a branch. Protected branches and branches
// with children are refused.
func (t *Twin) DeleteBranch(ctx context.Context, c Caller, name string) error {
	ctx = context.WithoutCancel(ctx)
	if name == MainName {
		return refuse(ErrInvalid, "main is the twin itself and cannot be deleted; delete branches only")
	}
	rec, unlock := t.lockBranch(name)
	defer unlock()
	t.mu.Lock()
	if rec == nil || !c.sees(rec) {
		t.mu.Unlock()
		return notFound(name)
	}
	if rec.Protected {
		t.mu.Unlock()
		return refuse(ErrConflict, "branch %q is protected; run pgtwin branches unprotect %[1]s first", name)
	}
	if kids := t.children(name); len(kids) > 0 {
		t.mu.Unlock()
		return refuse(ErrConflict, "branch %q has child branches (%s); delete them first", name, strings.Join(kids, ", "))
	}
	err := t.updateBranch(rec, func(r *branchRecord) { r.State = stateDeleting })
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if err := t.finishDelete(ctx, rec); err != nil {
		return err
	}
	t.log.Info().Str(logkey.Branch, name).Msg("branch deleted")
	t.kickSweeper()
	return nil
}

// finishDelete removes a branch recorded as deleting.
func (t *Twin) finishDelete(ctx context.Context, rec *branchRecord) error {
	t.closeProxy(rec.ID)
	if err := t.destroy(ctx, rec.ID); err != nil {
		return fmt.Errorf("delete %s: %w", rec.Name, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fleet.running, rec.ID)
	delete(t.fleet.upSince, rec.ID)
	if err := t.st.removeBranch(rec.ID); err != nil {
		return err
	}
	if t.branches[rec.Name] == rec {
		delete(t.branches, rec.Name)
	}
	delete(t.locks, rec.ID)
	delete(t.usage, rec.ID)
	return nil
}

// children are the names of branches made from branch name. Call with t.mu
// held.
func (t *Twin) children(name string) []string {
	var kids []string
	for _, b := range t.branches {
		if b.Parent == name {
			kids = append(kids, b.Name)
		}
	}
	sort.Strings(kids)
	return kids
}

// UpdateBranch protects or unprotects a branch, sets or clears its TTL,
// and renames it.
func (t *Twin) UpdateBranch(ctx context.Context, c Caller, name string, req api.UpdateBranchRequest) (api.Branch, error) {
	var exp *time.Time
	clearTTL := false
	if req.TTL != nil {
		d, err := parseTTL(*req.TTL)
		if err != nil {
			return api.Branch{}, err
		}
		if d == 0 {
			clearTTL = true
		} else {
			e := time.Now().UTC().Add(d)
			exp = &e
		}
	}
	rec, unlock := t.lockBranch(name)
	defer unlock()
	t.mu.Lock()
	if rec == nil || !c.sees(rec) {
		t.mu.Unlock()
		return api.Branch{}, notFound(name)
	}
	apply := func(r *branchRecord) {
		if req.Protected != nil {
			r.Protected = *req.Protected
		}
		if clearTTL {
			r.ExpiresAt = nil
		} else if exp != nil {
			r.ExpiresAt = exp
		}
	}
	var err error
	if req.Name != nil && *req.Name != name {
		err = t.renameLocked(rec, *req.Name, apply)
	} else {
		err = t.updateBranch(rec, apply)
	}
	t.mu.Unlock()
	if err != nil {
		return api.Branch{}, err
	}
	return t.branchView(ctx, c, rec, true), nil
}

func notFound(name string) error {
	return refuse(ErrNotFound, "branch %q not found; run pgtwin branches list to see yours", name)
}

// branchView is the API's view of a branch, for a caller c allowed to see
// it. Its URL carries the password for the owner only: an admin may manage
// the branch but not log in as its owner. withUsage measures changed_bytes
// (cached briefly: on btrfs a measurement syncs the filesystem); a branch
// just cloned reports 0.
func (t *Twin) branchView(ctx context.Context, c Caller, rec *branchRecord, withUsage bool) api.Branch {
	t.mu.Lock()
	r := *rec
	t.mu.Unlock()
	password := ""
	if c.owns(&r) {
		password = r.Password
	}
	b := api.Branch{
		Name: r.Name, Parent: r.Parent, Snapshot: r.Snapshot, State: r.State, Owner: r.Owner,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, Protected: r.Protected, Port: r.Port,
		ConnectionURI: connectionURI(r.role(), password, t.cfg.Engine.ListenAddress, r.Port, r.Database),
		Error:         r.Error,
	}
	if r.At != nil {
		at, exact := *r.At, r.PITR != nil // else a snapshot stood in
		b.At, b.AtExact = &at, &exact
	}
	if withUsage && (r.State == stateReady || r.State == api.StateSuspended) {
		b.ChangedBytes = t.changedBytes(ctx, r)
	}
	return b
}

const usageTTL = 10 * time.Second

func (t *Twin) changedBytes(ctx context.Context, r branchRecord) int64 {
	t.mu.Lock()
	if u, ok := t.usage[r.ID]; ok && time.Since(u.at) < usageTTL {
		t.mu.Unlock()
		return u.bytes
	}
	t.mu.Unlock()
	u, err := t.eng.Usage(ctx, r.ID)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			t.log.Warn().Err(err).Str(logkey.Branch, r.Name).Msg("usage unavailable")
		}
		return 0
	}
	t.mu.Lock()
	t.usage[r.ID] = usageEntry{bytes: u.ExclusiveBytes, at: time.Now()}
	t.mu.Unlock()
	return u.ExclusiveBytes
}

// usageEntry is a cached changed_bytes measurement.
type usageEntry struct {
	bytes int64
	at    time.Time
}
