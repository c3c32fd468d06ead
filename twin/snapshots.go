package twin

import (
	"context"
	"sort"
	"strings"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// ListSnapshots are the ready snapshots c sees (all of main's, and those of
// branches c sees), oldest first.
func (t *Twin) ListSnapshots(ctx context.Context, c Caller) []api.Snapshot {
	t.mu.Lock()
	var recs []snapshotRecord
	for _, s := range t.snaps {
		if s.State == stateReady && t.seesSnapshot(c, s) {
			recs = append(recs, *s)
		}
	}
	t.mu.Unlock()
	sort.Slice(recs, func(i, j int) bool {
		if !recs[i].CreatedAt.Equal(recs[j].CreatedAt) {
			return recs[i].CreatedAt.Before(recs[j].CreatedAt)
		}
		return recs[i].ID < recs[j].ID
	})
	out := make([]api.Snapshot, 0, len(recs))
	for _, r := range recs {
		out = append(out, t.snapshotView(r))
	}
	return out
}

// CreateSnapshot snapshots main on request.
func (t *Twin) CreateSnapshot(ctx context.Context, c Caller, req api.CreateSnapshotRequest) (api.Snapshot, error) {
	snap, err := t.TakeSnapshot(ctx, SnapshotOptions{Name: req.Name})
	if err == nil {
		t.log.Info().Str(logkey.Snapshot, snap.ID).Str(logkey.Owner, c.User).Msg("snapshot requested")
	}
	return snap, err
}

// DeleteSnapshot removes a snapshot of main that no branch uses. Only admins
// may: main's snapshots are shared by everyone.
func (t *Twin) DeleteSnapshot(ctx context.Context, c Caller, id string) error {
	ctx = context.WithoutCancel(ctx)
	t.mu.Lock()
	s := t.snaps[id]
	if s == nil || s.State != stateReady || !t.seesSnapshot(c, s) {
		t.mu.Unlock()
		return refuse(ErrNotFound, "snapshot %q not found; run pgtwin snapshots list to see them", id)
	}
	if s.Origin != MainName {
		t.mu.Unlock()
		return refuse(ErrConflict, "snapshot %q belongs to branch %q and goes away with the branches made from it", id, s.Origin)
	}
	if !c.Admin {
		t.mu.Unlock()
		return refuse(ErrForbidden, "only root and members of group %q may delete snapshots of main", t.cfg.Daemon.AdminGroup)
	}
	if users := t.snapshotUsers(id); len(users) > 0 {
		t.mu.Unlock()
		return refuse(ErrConflict, "snapshot %q is used by %d branch(es) (%s); delete or reset them first", id, len(users), strings.Join(users, ", "))
	}
	t.mu.Unlock()
	// A branch may have picked it meanwhile: check again as it is marked.
	used := func(s *snapshotRecord) bool { return len(t.snapshotUsers(s.ID)) > 0 }
	if !t.dropSnapshot(ctx, id, used) {
		return refuse(ErrConflict, "snapshot %q is in use or could not be removed now; try again (see the daemon log)", id)
	}
	t.log.Info().Str(logkey.Snapshot, id).Str(logkey.Owner, c.User).Msg("snapshot deleted")
	return nil
}

// snapshotUsers are the branches cloned from snapshot id. Call with t.mu held.
func (t *Twin) snapshotUsers(id string) []string {
	var names []string
	for _, b := range t.branches {
		if b.Snapshot == id {
			names = append(names, b.Name)
		}
	}
	sort.Strings(names)
	return names
}

// seesSnapshot: main's snapshots are everyone's; a branch's snapshot is seen
// by who sees the branch. Call with t.mu held.
func (t *Twin) seesSnapshot(c Caller, s *snapshotRecord) bool {
	if s.Origin == MainName || c.Admin {
		return true
	}
	b := t.branches[s.Origin]
	return b != nil && c.sees(b)
}

func (t *Twin) snapshotView(r snapshotRecord) api.Snapshot {
	t.mu.Lock()
	n := len(t.snapshotUsers(r.ID))
	t.mu.Unlock()
	return api.Snapshot{ID: r.ID, CreatedAt: r.CreatedAt, SourceLSN: r.SourceLSN, SizeBytes: r.SizeBytes, Branches: n, PITRBase: r.PITR != nil}
}

// dropSnapshot destroys snapshot id and its record, if it exists and keep
// (checked under t.mu, if given) does not say to keep it.
func (t *Twin) dropSnapshot(ctx context.Context, id string, keep func(s *snapshotRecord) bool) bool {
	t.mu.Lock()
	s := t.snaps[id]
	if s == nil || (keep != nil && keep(s)) {
		t.mu.Unlock()
		return false
	}
	err := t.updateSnapshot(s, func(r *snapshotRecord) { r.State = stateDeleting })
	vol := s.Volume
	t.mu.Unlock()
	if err == nil {
		err = t.destroy(ctx, vol)
	}
	if err != nil {
		t.log.Error().Err(err).Str(logkey.Snapshot, id).Msg("could not remove snapshot; the sweeper retries")
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.st.removeSnapshot(id); err != nil {
		t.log.Error().Err(err).Str(logkey.Snapshot, id).Msg("could not drop snapshot record")
		return false
	}
	delete(t.snaps, id)
	return true
}
