package twin

import (
	"context"
	"errors"
	"fmt"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// EnsureBranch is create --if-not-exists: the caller's branch of that name
// as it is (existed true; the request's other fields are ignored), else a
// new one. Another user's branch of that name is a conflict.
func (t *Twin) EnsureBranch(ctx context.Context, c Caller, req api.CreateBranchRequest) (b api.Branch, existed bool, err error) {
	ctx = context.WithoutCancel(ctx)
	if err := ValidateBranchName(req.Name); err != nil {
		return api.Branch{}, false, err
	}
	// Twice: a create of the same name may win the race between the look
	// and our own create (a re-run CI job started twice).
	for range 2 {
		if b, ok, err := t.existingBranch(ctx, c, req.Name); ok || err != nil {
			return b, ok, err
		}
		b, err := t.CreateBranch(ctx, c, req)
		if err == nil || !errors.Is(err, ErrConflict) || !t.hasBranch(req.Name) {
			return b, false, err
		}
	}
	return t.existingBranchOnce(ctx, c, req.Name)
}

func (t *Twin) existingBranchOnce(ctx context.Context, c Caller, name string) (api.Branch, bool, error) {
	b, ok, err := t.existingBranch(ctx, c, name)
	if !ok && err == nil {
		err = refuse(ErrConflict, "branch %q is being created and deleted concurrently; try again", name)
	}
	return b, ok, err
}

// existingBranch waits for any create, reset or delete of the branch named
// name to finish, then returns it if it exists and is c's own.
func (t *Twin) existingBranch(ctx context.Context, c Caller, name string) (api.Branch, bool, error) {
	rec, unlock := t.lockBranch(name)
	defer unlock()
	if rec == nil {
		return api.Branch{}, false, nil
	}
	t.mu.Lock()
	mine := c.owns(rec)
	t.mu.Unlock()
	if !mine {
		return api.Branch{}, false, refuse(ErrConflict, "branch %q already exists and belongs to another user; --if-not-exists reuses only your own branches, so choose another name", name)
	}
	return t.branchView(ctx, c, rec, false), true, nil
}

func (t *Twin) hasBranch(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.branches[name] != nil
}

// renameLocked gives rec the name to, applying fn (the rest of the update)
// in the same record write. Port, role, password and volume stay: the URL
// is the same. The branch's own record is written first with RenamedFrom
// set; then its children's Parent and its snapshots' Origin; then
// RenamedFrom is cleared. A crash in between is rolled forward at start
// (finishRenames). Call with t.mu and the branch's lock held.
func (t *Twin) renameLocked(rec *branchRecord, to string, fn func(r *branchRecord)) error {
	from := rec.Name
	if err := ValidateBranchName(to); err != nil {
		return err
	}
	if t.branches[to] != nil {
		return refuse(ErrConflict, "branch %q already exists; choose another name", to)
	}
	if t.snaps[to] != nil {
		return refuse(ErrConflict, "%q is a snapshot's id, so --parent %[1]s would be ambiguous; choose another name", to)
	}
	switch rec.State {
	case stateReady, api.StateSuspended, api.StateFailed:
	default:
		return refuse(ErrConflict, "branch %q is %s; wait until it is ready", from, rec.State)
	}
	err := t.updateBranch(rec, func(r *branchRecord) {
		fn(r)
		r.Name, r.RenamedFrom = to, from
	})
	if err != nil {
		return err
	}
	delete(t.branches, from)
	t.branches[to] = rec
	if err := t.finishRename(rec); err != nil {
		return fmt.Errorf("rename %s: %w (the next daemon start finishes it)", from, err)
	}
	t.log.Info().Str(logkey.Branch, to).Str("renamed_from", from).Msg("branch renamed")
	return nil
}

// finishRename points rec's children and snapshots at its new name, then
// clears RenamedFrom. Call with t.mu held.
func (t *Twin) finishRename(rec *branchRecord) error {
	from, to := rec.RenamedFrom, rec.Name
	for _, b := range t.branches {
		if b != rec && b.Parent == from {
			if err := t.updateBranch(b, func(r *branchRecord) { r.Parent = to }); err != nil {
				return err
			}
		}
	}
	for _, s := range t.snaps {
		if s.Origin == from {
			if err := t.updateSnapshot(s, func(r *snapshotRecord) { r.Origin = to }); err != nil {
				return err
			}
		}
	}
	return t.updateBranch(rec, func(r *branchRecord) { r.RenamedFrom = "" })
}

// finishRenames rolls forward renames a crash interrupted. Call with t.mu
// held, right after the records are loaded.
func (t *Twin) finishRenames() error {
	for _, b := range t.branches {
		if b.RenamedFrom == "" {
			continue
		}
		t.log.Warn().Str(logkey.Branch, b.Name).Str("renamed_from", b.RenamedFrom).Msg("finishing interrupted rename")
		if err := t.finishRename(b); err != nil {
			return fmt.Errorf("finish rename of %s: %w", b.Name, err)
		}
	}
	return nil
}
