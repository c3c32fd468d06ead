package twin

import (
	"context"
	"sort"
	"time"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// RestoreBranch puts the branch back to what its parent held at req.At:
// the newest snapshot of the parent not newer than that (main's, or those
// kept of a parent branch), on the same port with the same role and
// password, ready when this returns.
func (t *Twin) RestoreBranch(ctx context.Context, c Caller, name string, req api.RestoreBranchRequest) (api.Branch, error) {
	ctx = context.WithoutCancel(ctx)
	if req.At == "" {
		return api.Branch{}, refuse(ErrInvalid, "restore needs --at TIME (RFC 3339 or relative, e.g. 2h); to go back to the parent's newest state use pgtwin branches reset")
	}
	at, err := parseAt(req.At, time.Now().UTC())
	if err != nil {
		return api.Branch{}, err
	}
	rec, unlock := t.lockBranch(name)
	defer unlock()
	t.mu.Lock()
	if err := replaceable(c, rec, name); err != nil {
		t.mu.Unlock()
		return api.Branch{}, err
	}
	// Refused before anything is torn down.
	if _, err := t.pickAt(rec.Parent, at); err != nil {
		t.mu.Unlock()
		return api.Branch{}, err
	}
	wasSuspended := rec.State == api.StateSuspended
	t.mu.Unlock()
	start := time.Now()
	if err := t.reset(ctx, rec, &at); err != nil {
		return api.Branch{}, err
	}
	if wasSuspended {
		if err := t.suspendLocked(ctx, rec, "it was suspended before its restore"); err != nil {
			t.log.Error().Err(err).Str(logkey.Branch, name).Msg("could not suspend the branch again after its restore")
		}
	}
	t.log.Info().Str(logkey.Branch, name).Str(logkey.Snapshot, rec.Snapshot).Time("at", at).Dur(logkey.Duration, time.Since(start)).Msg("branch restored")
	t.kickSweeper()
	t.mu.Lock()
	delete(t.usage, rec.ID)
	t.mu.Unlock()
	return t.branchView(ctx, c, rec, false), nil
}

// pickAt is the newest ready snapshot of parent (main or a branch) not newer
// than at. Call with t.mu held.
func (t *Twin) pickAt(parent string, at time.Time) (*snapshotRecord, error) {
	s, _, err := t.pickAtPlan(parent, at, nil)
	return s, err
}

// pickAtPlan is pickAt, recovering main's snapshot to exactly at when plan
// allows. Call with t.mu held.
func (t *Twin) pickAtPlan(parent string, at time.Time, plan *pitrPlan) (*snapshotRecord, *pitrTarget, error) {
	if parent == MainName {
		return t.pickMainAt(at, true, plan)
	}
	var snaps []*snapshotRecord
	for _, s := range t.snaps {
		if s.Origin == parent && s.State == stateReady {
			snaps = append(snaps, s)
		}
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].CreatedAt.After(snaps[j].CreatedAt) })
	for _, s := range snaps {
		if !s.CreatedAt.After(at) {
			return s, nil, nil
		}
	}
	return nil, nil, refuse(ErrNotFound, "no state of branch %q from at or before %s is kept (a branch's states are kept only while branches use them); pick a later time, or reset to its newest state",
		parent, at.UTC().Format(time.RFC3339))
}
