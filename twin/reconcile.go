package twin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// reconcile brings records, volumes and processes into agreement after a
// start, clean or after a crash: half-made things are rolled back (creates)
// or forward (resets, deletes), volumes no record names are removed, and
// running branches are adopted (settleFleet then records those whose
// postmaster is gone as suspended; nothing is started that no client asked for).
func (t *Twin) reconcile(ctx context.Context) error {
	if ids, err := t.eng.Recover(ctx); err != nil {
		return fmt.Errorf("recover engine: %w", err)
	} else if len(ids) > 0 {
		t.log.Warn().Strs("volumes", ids).Msg("removed volumes half-made before a crash")
	}
	m, snaps, branches, err := t.st.load()
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.main = m
	// Each record gets its own copy: the slices are sorted below.
	for _, s := range snaps {
		t.snaps[s.ID] = &s
	}
	for _, b := range branches {
		t.branches[b.Name] = &b
	}
	err = t.finishRenames()
	t.mu.Unlock()
	if err != nil {
		return err
	}

	// Snapshots half taken or half removed: their volumes go. Branches that
	// were being made from them are handled below.
	for _, s := range snaps {
		if s.State != stateReady {
			t.log.Warn().Str(logkey.Snapshot, s.ID).Str("state", s.State).Msg("removing snapshot left unfinished")
			t.dropSnapshot(ctx, s.ID, nil)
		}
	}

	if err := t.reconcileMain(ctx); err != nil {
		return err
	}

	// Parents before children: a child's reset may snapshot its parent.
	sort.Slice(branches, func(i, j int) bool { return depth(t, branches[i].Name) < depth(t, branches[j].Name) })
	for _, b := range branches {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.mu.Lock()
		rec := t.branches[b.Name]
		t.mu.Unlock()
		if err := t.reconcileBranch(ctx, rec); err != nil {
			return err
		}
	}

	if err := t.removeOrphans(ctx); err != nil {
		return err
	}
	t.mu.Lock()
	n := len(t.mainSnapshots())
	t.mu.Unlock()
	if n == 0 {
		if _, err := t.TakeSnapshot(ctx, SnapshotOptions{}); err != nil {
			return fmt.Errorf("first snapshot of main: %w", err)
		}
	}
	t.mu.Lock()
	nb, ns := len(t.branches), len(t.snaps)
	t.mu.Unlock()
	t.log.Info().Int("branches", nb).Int("snapshots", ns).Msg("reconciled")
	return nil
}

func depth(t *Twin, name string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := 0
	for b := t.branches[name]; b != nil && b.Parent != MainName && d < 100; b = t.branches[b.Parent] {
		d++
	}
	return d
}

func (t *Twin) reconcileMain(ctx context.Context) error {
	t.mu.Lock()
	m := t.main
	t.mu.Unlock()
	if m == nil || m.State != stateReady {
		return t.initMain(ctx)
	}
	if m.Pending != "" {
		t.log.Warn().Str(logkey.Volume, m.Pending).Msg("removing main replacement left unfinished")
		if err := t.destroy(ctx, m.Pending); err != nil {
			return err
		}
		t.mu.Lock()
		err := t.updateMain(func(m *mainRecord) { m.Pending, m.PendingPort = "", 0 })
		t.mu.Unlock()
		if err != nil {
			return err
		}
	}
	_, err := t.startMain(ctx)
	if errors.Is(err, engine.ErrNotFound) {
		t.log.Error().Str(logkey.Volume, m.Volume).Msg("main's volume is gone; making a new, empty main (the next sync fills it)")
		t.mu.Lock()
		err = t.updateMain(func(m *mainRecord) { m.State = stateCreating })
		t.mu.Unlock()
		if err == nil {
			err = t.initMain(ctx)
		}
	}
	return err
}

// reconcileBranch leaves the branch ready (or failed, logged) or gone.
func (t *Twin) reconcileBranch(ctx context.Context, rec *branchRecord) error {
	log := t.log.With().Str(logkey.Branch, rec.Name).Str(logkey.Volume, rec.ID).Logger()
	switch rec.State {
	case stateCreating:
		log.Warn().Msg("rolling back branch whose create was interrupted")
		t.rollbackCreate(ctx, rec, nil)
		return nil
	case stateDeleting:
		log.Warn().Msg("finishing interrupted delete")
		return t.finishDelete(ctx, rec)
	case api.StateResetting:
		log.Warn().Msg("finishing interrupted reset")
		if err := t.reset(ctx, rec, rec.At); err != nil {
			log.Error().Err(err).Msg("branch could not be reset; it is marked failed")
		}
		return nil
	}
	// Suspended branches stay stopped, and a ready one whose postmaster is
	// gone is recorded suspended by settleFleet: a restart starts nothing a
	// client did not ask for. A running one is adopted (and moved off TCP if
	// an older daemon started it there); a failed one gets another try.
	if rec.State == api.StateSuspended {
		return nil
	}
	if _, running := t.eng.Instance(rec.ID); rec.State == stateReady && !running {
		return nil
	}
	_, err := t.eng.Start(ctx, rec.ID, t.branchSpec(rec.Port))
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			err = fmt.Errorf("its volume is gone; reset or delete it")
		}
		log.Error().Err(err).Msg("branch could not be started; it is marked failed")
		return t.updateBranch(rec, func(r *branchRecord) { r.State = api.StateFailed; r.Error = err.Error() })
	}
	if rec.State != stateReady {
		return t.updateBranch(rec, func(r *branchRecord) { r.State = stateReady; r.Error = "" })
	}
	return nil
}

// removeOrphans destroys volumes no record names, e.g. a clone finished just
// before a crash whose branch record was then rolled back.
func (t *Twin) removeOrphans(ctx context.Context) error {
	vols, err := t.eng.Volumes(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	known := map[string]bool{}
	if t.main != nil {
		known[t.main.Volume] = true
		known[t.main.Template] = true
	}
	for _, s := range t.snaps {
		known[s.Volume] = true
	}
	for _, b := range t.branches {
		known[b.ID] = true
	}
	t.mu.Unlock()
	for _, v := range vols {
		if known[v] || !ours(v) {
			continue
		}
		t.log.Warn().Str(logkey.Volume, v).Msg("removing volume no record names")
		if err := t.destroy(ctx, v); err != nil {
			return fmt.Errorf("remove orphan volume %s: %w", v, err)
		}
	}
	return nil
}

// ours says whether a volume id is one the twin makes; anything else on the
// driver's root is left alone.
func ours(v string) bool {
	return strings.HasPrefix(v, "main-") || strings.HasPrefix(v, "snap-") || strings.HasPrefix(v, "b-") || strings.HasPrefix(v, "tmpl-")
}
