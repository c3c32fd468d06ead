package twin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/proxy"
	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// CreateBranch makes a branch and returns once it accepts connections.
func (t *Twin) CreateBranch(ctx context.Context, c Caller, req api.CreateBranchRequest) (api.Branch, error) {
	// Once accepted, a create finishes (or rolls back) even if the client
	// goes away.
	ctx = context.WithoutCancel(ctx)
	if err := ValidateBranchName(req.Name); err != nil {
		return api.Branch{}, err
	}
	parent := req.Parent
	if parent == "" {
		parent = MainName
	}
	ttl := t.cfg.Branches.DefaultTTL.D()
	if req.TTL != "" {
		d, err := parseTTL(req.TTL)
		if err != nil {
			return api.Branch{}, err
		}
		ttl = d
	}
	now := time.Now().UTC()
	var at time.Time
	if req.At != "" {
		if parent != MainName {
			return api.Branch{}, refuse(ErrInvalid, "--at picks a snapshot of main; leave out --parent or use --parent main")
		}
		var err error
		if at, err = parseAt(req.At, now); err != nil {
			return api.Branch{}, err
		}
	}

	var plan *pitrPlan
	if req.At != "" {
		plan = t.planAt(ctx, at)
	}
	t.mu.Lock()
	rec, parentRec, pending, err := t.planBranch(c, req, parent, at, plan, ttl, now)
	if err != nil {
		t.mu.Unlock()
		return api.Branch{}, err
	}
	lock := t.lockFor(rec.ID)
	lock.Lock() // fresh: never blocks
	t.mu.Unlock()
	defer lock.Unlock()

	log := t.log.With().Str(logkey.Branch, rec.Name).Str(logkey.Volume, rec.ID).Logger()
	start := time.Now()
	// The listener comes first: a client that connects early waits on the
	// branch's lock until the create is done.
	err = t.openProxy(rec)
	for try := 0; errors.Is(err, proxy.ErrAddrInUse) && try < 3; try++ {
		err = t.movePort(rec)
		if err == nil {
			err = t.openProxy(rec)
		}
	}
	if err == nil {
		err = t.buildBranch(ctx, rec, parentRec, pending)
	}
	if err != nil {
		log.Error().Err(err).Msg("create failed; rolling back")
		t.rollbackCreate(ctx, rec, pending)
		return api.Branch{}, err
	}
	t.met.observeCreate(time.Since(start))
	log.Info().Str(logkey.Owner, rec.Owner).Str("parent", rec.Parent).Str(logkey.Snapshot, rec.Snapshot).
		Dur(logkey.Duration, time.Since(start)).Msg("branch created")
	return t.branchView(ctx, c, rec, false), nil
}

// planBranch checks the request against the records and records the new
// branch (and, for a branch of a branch, its pending snapshot) in state
// creating. Call with t.mu held.
func (t *Twin) planBranch(c Caller, req api.CreateBranchRequest, parent string, at time.Time, plan *pitrPlan, ttl time.Duration, now time.Time) (rec, parentRec *branchRecord, pending *snapshotRecord, err error) {
	if _, ok := t.branches[req.Name]; ok {
		return nil, nil, nil, refuse(ErrConflict, "branch %q already exists; choose another name", req.Name)
	}
	if max := t.cfg.Branches.MaxBranches; max > 0 && len(t.branches) >= max {
		return nil, nil, nil, refuse(ErrLimit, "the daemon already holds %d branches, its branches.max_branches; delete some first", len(t.branches))
	}
	if err := t.checkUserQuota(c); err != nil {
		return nil, nil, nil, err
	}
	if t.main == nil || t.main.State != stateReady {
		return nil, nil, nil, refuse(ErrNotReady, "main is not ready yet; wait for the daemon to finish starting")
	}
	rec = &branchRecord{
		ID: "b-" + randomHex(6), Name: req.Name, State: stateCreating,
		Owner: c.User, OwnerUID: c.UID, CreatedAt: now, Protected: req.Protect,
		Password: randomHex(16), Database: t.main.Database, Role: roleFor(c.User),
	}
	if ttl > 0 {
		exp := now.Add(ttl)
		rec.ExpiresAt = &exp
	}
	switch p := t.branches[parent]; {
	case parent == MainName:
		snap, tgt, err := t.pickMainAt(at, req.At != "", plan)
		if err != nil {
			return nil, nil, nil, err
		}
		rec.Parent, rec.Snapshot, rec.PITR = MainName, snap.ID, tgt
		if req.At != "" {
			rec.At = &at
		}
	case p != nil && c.sees(p):
		if p.State != stateReady && p.State != api.StateSuspended {
			return nil, nil, nil, refuse(ErrConflict, "branch %q is %s; wait until it is ready", parent, p.State)
		}
		rec.Parent, parentRec = parent, p
	case t.snaps[parent] != nil && t.snaps[parent].State == stateReady && t.seesSnapshot(c, t.snaps[parent]):
		rec.Parent, rec.Snapshot = t.snaps[parent].Origin, parent
	default:
		return nil, nil, nil, refuse(ErrNotFound, "parent %q is neither main, one of your branches, nor a snapshot; see pgtwin branches list and pgtwin snapshots list", parent)
	}
	port, err := t.eng.AllocatePort(t.portsInUse())
	if err != nil {
		return nil, nil, nil, err
	}
	rec.Port = port
	if parentRec != nil {
		if pending, err = t.newSnapshotRecord(parentRec.Name, SnapshotOptions{}); err != nil {
			return nil, nil, nil, err
		}
		rec.Snapshot = pending.ID
	}
	if err := t.st.saveBranch(*rec); err != nil {
		if pending != nil {
			delete(t.snaps, pending.ID)
			_ = t.st.removeSnapshot(pending.ID)
		}
		return nil, nil, nil, err
	}
	t.branches[rec.Name] = rec
	return rec, parentRec, pending, nil
}

// pickMainSnapshot is main's newest ready snapshot, or with useAt the newest
// not newer than at. Call with t.mu held.
func (t *Twin) pickMainSnapshot(at time.Time, useAt bool) (*snapshotRecord, error) {
	snaps := t.mainSnapshots()
	if len(snaps) == 0 {
		return nil, refuse(ErrNotReady, "main has no snapshot yet; run pgtwin snapshots create or wait for the first sync")
	}
	if !useAt {
		return snaps[0], nil
	}
	for _, s := range snaps {
		if !s.CreatedAt.After(at) {
			return s, nil
		}
	}
	return nil, refuse(ErrNotFound, "no snapshot of main was taken at or before %s; the oldest is %s from %s (see pgtwin snapshots list)",
		at.UTC().Format(time.RFC3339), snaps[len(snaps)-1].ID, snaps[len(snaps)-1].CreatedAt.Format(time.RFC3339))
}

// buildBranch takes the pending snapshot of the parent branch, if any, then
// clones and starts the branch.
func (t *Twin) buildBranch(ctx context.Context, rec, parentRec *branchRecord, pending *snapshotRecord) error {
	if pending != nil {
		if err := t.snapshotParent(ctx, parentRec.Name, pending.ID); err != nil {
			return err
		}
	}
	if err := t.materialize(ctx, rec); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.updateBranch(rec, func(r *branchRecord) { r.State = stateReady; r.Error = "" })
}

// snapshotParent fills pending snapshot id from branch parent's volume while
// holding the parent's lock, so the parent is not reset or deleted under it.
// The parent keeps running.
func (t *Twin) snapshotParent(ctx context.Context, parent, id string) error {
	p, unlock := t.lockBranch(parent)
	defer unlock()
	if p == nil || (p.State != stateReady && p.State != api.StateSuspended) {
		t.mu.Lock()
		if s := t.snaps[id]; s != nil {
			delete(t.snaps, id)
			_ = t.st.removeSnapshot(id)
		}
		t.mu.Unlock()
		return refuse(ErrConflict, "parent branch %q went away or is not ready; try again", parent)
	}
	return t.fillSnapshot(ctx, p.ID, id)
}

// materialize replaces the branch's volume with a fresh clone of its
// snapshot, starts it on its port and sets up its login role.
func (t *Twin) materialize(ctx context.Context, rec *branchRecord) error {
	t.mu.Lock()
	snap := t.snaps[rec.Snapshot]
	id, port, tgt := rec.ID, rec.Port, rec.PITR
	t.mu.Unlock()
	if snap == nil || snap.State != stateReady {
		return fmt.Errorf("branch %s: snapshot %s is gone", rec.Name, rec.Snapshot)
	}
	td := time.Now()
	if err := t.eng.Stop(ctx, id); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	ts := time.Now()
	if err := t.destroy(ctx, id); err != nil {
		return err
	}
	tc := time.Now()
	if err := t.eng.Clone(ctx, snap.Volume, id); err != nil {
		return err
	}
	t.limitVolume(ctx, rec)
	t0 := time.Now()
	if err := t.claimSlot(ctx, id); err != nil {
		return err
	}
	spec := t.branchSpec(port)
	if err := t.pitrStart(ctx, id, tgt, &spec); err != nil {
		t.releaseSlot(id)
		return err
	}
	inst, err := t.eng.Start(ctx, id, spec)
	if err == nil {
		err = t.pitrDone(ctx, inst, tgt)
	}
	if err != nil {
		t.releaseSlot(id)
		return err
	}
	t1 := time.Now()
	if err := t.setupRole(ctx, inst, rec); err != nil {
		return err
	}
	t.log.Debug().Str(logkey.Volume, id).Dur("stop", ts.Sub(td)).Dur("destroy", tc.Sub(ts)).Dur("clone", t0.Sub(tc)).Dur("start", t1.Sub(t0)).Dur("role", time.Since(t1)).Msg("branch materialized")
	return nil
}

// setupRole gives the branch owner a login role that is a member of the owner
// role, with the branch's password, and disarms every other role the clone
// carries (a branch of someone else's branch must not open with their
// password, nor keep a superuser made in it).
func (t *Twin) setupRole(ctx context.Context, inst *engine.Instance, rec *branchRecord) error {
	t.mu.Lock()
	l := engine.Login{Role: rec.role(), Password: rec.Password, MemberOf: ownerRole}
	db := rec.Database
	t.mu.Unlock()
	return t.eng.SetupLogin(ctx, inst, db, l)
}

// rollbackCreate removes whatever a failed create made.
func (t *Twin) rollbackCreate(ctx context.Context, rec *branchRecord, pending *snapshotRecord) {
	t.closeProxy(rec.ID)
	defer t.releaseSlot(rec.ID)
	if err := t.destroy(ctx, rec.ID); err != nil {
		t.log.Error().Err(err).Str(logkey.Volume, rec.ID).Msg("could not remove volume of a failed create; the next start removes it")
		return
	}
	if pending != nil {
		t.dropSnapshot(ctx, pending.ID, nil)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.st.removeBranch(rec.ID); err != nil {
		t.log.Error().Err(err).Str(logkey.Branch, rec.Name).Msg("could not drop record of a failed create")
		return
	}
	delete(t.branches, rec.Name)
	delete(t.locks, rec.ID)
}

// movePort gives a branch still being created another port: another
// program bound its port between AllocatePort's probe and the listener, and
// nobody has been told the port yet.
func (t *Twin) movePort(rec *branchRecord) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	port, err := t.eng.AllocatePort(t.portsInUse())
	if err != nil {
		return err
	}
	t.log.Warn().Str(logkey.Branch, rec.Name).Int(logkey.Port, port).Msg("another program took the new branch's port before its listener opened; moved it to this one")
	return t.updateBranch(rec, func(r *branchRecord) { r.Port = port })
}
