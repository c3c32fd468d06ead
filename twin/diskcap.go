package twin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/internal/units"
	"github.com/pgtwin/pgtwin/twin/api"
)

// The disk cap (branches.max_changed_bytes) is enforced by sampling: every
// DiskCapInterval each running branch's changed bytes are measured, and a
// branch over the cap is restarted as a read-only hot standby of nothing
// (engine.SetReadOnly). Its clients can still read; every write fails with
// "cannot execute ... in a read-only transaction", which no session can SET
// away. The host and the other branches go on as before.
//
// This is the mechanism on every driver. A btrfs qgroup limit alone would
// be exact, but it is a hard EDQUOT on any write to the subvolume:
// PostgreSQL PANICs when it cannot write WAL, crash recovery then PANICs on
// its end-of-recovery checkpoint, and the branch is down, not read-only.
// (Measured: a hot standby started on such a volume does come up and serve
// reads.) So where the driver can (btrfs with quotas) the qgroup limit is
// only a backstop, DiskCapMargin past the cap: a writer faster than the
// sampler crashes into it instead of filling the pool, and the next round
// finds the branch over the cap and restarts it read-only like any other.
// Without a backstop (reflink, copy) a branch may write for up to one
// interval (plus one measurement) past the cap before it is stopped. On the
// copy driver a branch shares nothing, so its changed bytes are its size.
//
// A branch once read-only stays so (across suspend, wake and daemon
// restarts: the mark is in its record and standby.signal in its data
// directory) until it is reset, or the daemon runs with a cap that is
// removed or changed to one the branch is under. Its usage moves on its
// own (the shutdown checkpoint flushes, old WAL is recycled), and flipping
// back and forth at the cap would restart it each time.

// readOnlyMark is recorded on a branch that went over the cap.
type readOnlyMark struct {
	Cap   int64     `json:"cap"`   // branches.max_changed_bytes then
	Bytes int64     `json:"bytes"` // its changed bytes then
	Since time.Time `json:"since"`
}

// overCap says whether a branch with mark (nil: writable) should be
// read-only with the cap limit (0: none) and used changed bytes.
func overCap(mark *readOnlyMark, limit, used int64) bool {
	if mark == nil {
		return limit > 0 && used > limit
	}
	return limit != 0 && (limit == mark.Cap || used >= limit)
}

// capLifted says whether the cap may have been lifted for a branch with
// mark: only then is it worth measuring a stopped branch before its start.
func capLifted(mark *readOnlyMark, limit int64) bool {
	return mark != nil && (limit == 0 || limit != mark.Cap)
}

func overCapReason(name string, used, limit int64) string {
	return fmt.Sprintf("over branches.max_changed_bytes (%s changed, cap %s): writes are refused; "+
		"reset the branch (pgtwin branches reset %s) or ask an admin to raise the cap", units.IEC(used), units.IEC(limit), name)
}

// diskCapLoop enforces branches.max_changed_bytes on running branches.
func (t *Twin) diskCapLoop(ctx context.Context) {
	t.limitAll(ctx)
	tick := time.NewTicker(t.opts.DiskCapInterval)
	defer tick.Stop()
	warned := map[string]bool{} // branch ids whose usage could not be read
	for {
		t.checkDiskCaps(ctx, warned)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *Twin) checkDiskCaps(ctx context.Context, warned map[string]bool) {
	limit := int64(t.cfg.Branches.MaxChangedBytes)
	t.mu.Lock()
	var recs []*branchRecord
	for _, b := range t.branches {
		if b.State == stateReady && t.fleet.running[b.ID] {
			recs = append(recs, b)
		}
	}
	t.mu.Unlock()
	for _, rec := range recs {
		if ctx.Err() != nil {
			return
		}
		t.checkDiskCap(ctx, rec, limit, warned)
	}
}

// checkDiskCap measures one running branch and restarts it read-only or
// writable if it is not as the cap and its record say.
func (t *Twin) checkDiskCap(ctx context.Context, rec *branchRecord, limit int64, warned map[string]bool) {
	t.mu.Lock()
	id, name, mark := rec.ID, rec.Name, rec.ReadOnly
	t.mu.Unlock()
	want := mark != nil
	var used int64
	if limit > 0 || mark != nil {
		u, err := t.eng.Usage(ctx, id)
		if err != nil {
			if !warned[id] && ctx.Err() == nil {
				t.log.Warn().Err(err).Str(logkey.Branch, name).Msg("changed bytes unavailable; branches.max_changed_bytes is not enforced on this branch until they are")
				warned[id] = true
			}
			return
		}
		delete(warned, id)
		used = u.ExclusiveBytes
		t.mu.Lock()
		t.usage[id] = usageEntry{bytes: used, at: time.Now()}
		t.mu.Unlock()
		want = overCap(mark, limit, used)
	}
	if want == (mark != nil) && t.eng.ReadOnly(id) == want {
		return
	}
	// A branch busy with a reset, a snapshot for a child or a wake is
	// looked at again next round.
	t.mu.Lock()
	m := t.lockFor(id)
	t.mu.Unlock()
	if !m.TryLock() {
		return
	}
	defer m.Unlock()
	t.mu.Lock()
	same := t.branches[name] == rec && rec.State == stateReady && t.fleet.running[id] && rec.ReadOnly == mark
	t.mu.Unlock()
	if !same {
		return
	}
	t.restartReadOnly(ctx, rec, want, used, limit)
}

// restartReadOnly records the branch read-only (or not), then restarts its
// instance that way. The record comes first: after a crash in between, the
// next round (or the next start) makes the instance match it. Call with the
// branch's lock held.
func (t *Twin) restartReadOnly(ctx context.Context, rec *branchRecord, on bool, used, limit int64) {
	t.mu.Lock()
	id, name := rec.ID, rec.Name
	err := t.updateBranch(rec, func(r *branchRecord) {
		switch {
		case on && r.ReadOnly == nil:
			r.ReadOnly = &readOnlyMark{Cap: limit, Bytes: used, Since: time.Now().UTC()}
			r.Error = overCapReason(name, used, limit)
		case !on:
			r.ReadOnly, r.Error = nil, ""
		}
	})
	port, reason := rec.Port, rec.Error
	t.mu.Unlock()
	log := t.log.With().Str(logkey.Branch, name).Int64(logkey.Bytes, used).Logger()
	if err != nil {
		log.Error().Err(err).Msg("could not record the branch's disk cap state; trying again next round")
		return
	}
	// Once stopped, finish even if the daemon is stopping: its clients
	// would be left without a server until the next connection.
	ctx = context.WithoutCancel(ctx)
	begin := time.Now()
	// The hard limit is lifted meanwhile: at it, the shutdown checkpoint
	// fails (a fast shutdown then times out) and so does creating
	// standby.signal.
	restore := t.liftLimit(ctx, id)
	err = t.eng.Stop(ctx, id)
	if err == nil {
		err = t.eng.SetReadOnly(id, on)
	}
	if err == nil {
		_, err = t.eng.Start(ctx, id, t.branchSpec(port))
	}
	restore()
	if err != nil {
		t.mu.Lock()
		uerr := t.updateBranch(rec, func(r *branchRecord) {
			r.State = api.StateFailed
			r.Error = fmt.Sprintf("could not be restarted for branches.max_changed_bytes: %v", err)
		})
		t.mu.Unlock()
		t.releaseSlot(id)
		if uerr != nil {
			log.Error().Err(uerr).Msg("could not record the branch failed")
		}
		log.Error().Err(err).Msg("branch could not be restarted for its disk cap; it is marked failed")
		return
	}
	if on {
		log.Warn().Int64(logkey.Limit, limit).Str(logkey.Reason, reason).Dur(logkey.Duration, time.Since(begin)).Msg("branch restarted read-only")
	} else {
		log.Info().Int64(logkey.Limit, limit).Dur(logkey.Duration, time.Since(begin)).Msg("branch restarted writable: under branches.max_changed_bytes")
	}
}

// prepareDiskCap makes a stopped branch start read-only exactly when its
// record says so, clearing the mark first if the cap was lifted and the
// branch is under the new one. Call with the branch's lock held, before
// its instance is started.
func (t *Twin) prepareDiskCap(ctx context.Context, rec *branchRecord) error {
	t.mu.Lock()
	id, name, mark := rec.ID, rec.Name, rec.ReadOnly
	t.mu.Unlock()
	if _, running := t.eng.Instance(id); running {
		return nil // adopted as it runs; the sampler sees to it
	}
	limit := int64(t.cfg.Branches.MaxChangedBytes)
	if capLifted(mark, limit) {
		u, err := t.eng.Usage(ctx, id)
		if err == nil && !overCap(mark, limit, u.ExclusiveBytes) {
			t.mu.Lock()
			err = t.updateBranch(rec, func(r *branchRecord) { r.ReadOnly, r.Error = nil, "" })
			t.mu.Unlock()
			if err != nil {
				return err
			}
			mark = nil
			t.log.Info().Str(logkey.Branch, name).Int64(logkey.Bytes, u.ExclusiveBytes).Int64(logkey.Limit, limit).
				Msg("branch writable again: under branches.max_changed_bytes")
		}
	}
	if on := mark != nil; t.eng.ReadOnly(id) != on {
		defer t.liftLimit(ctx, id)()
		return t.eng.SetReadOnly(id, on)
	}
	return nil
}

// liftLimit removes branch volume id's hard limit, if it has one, until the
// returned func puts it back.
func (t *Twin) liftLimit(ctx context.Context, id string) func() {
	hard := t.backstop(int64(t.cfg.Branches.MaxChangedBytes))
	if hard == 0 || t.eng.LimitVolume(ctx, id, 0) != nil {
		return func() {}
	}
	return func() {
		if err := t.eng.LimitVolume(ctx, id, hard); err != nil {
			t.log.Warn().Err(err).Str(logkey.Volume, id).Msg("could not put back the hard limit behind branches.max_changed_bytes")
		}
	}
}

// backstop is the hard limit behind cap limit (0: none): far enough past it
// that the sampler stops a branch first (an interval of fast writes, then
// the shutdown checkpoint's flush), near enough that a branch the sampler
// misses cannot take the pool.
func (t *Twin) backstop(limit int64) int64 {
	if limit <= 0 {
		return 0
	}
	m := t.opts.DiskCapMargin
	if m <= 0 {
		m = max(limit/2, 1<<30)
	}
	return limit + m
}

// limitVolume sets the backstop on a new clone of rec. A driver without
// per-volume limits is no error: the sampler is then all there is.
func (t *Twin) limitVolume(ctx context.Context, rec *branchRecord) {
	t.mu.Lock()
	id, name := rec.ID, rec.Name
	t.mu.Unlock()
	err := t.eng.LimitVolume(ctx, id, t.backstop(int64(t.cfg.Branches.MaxChangedBytes)))
	if err != nil && !errors.Is(err, engine.ErrUnsupported) {
		t.log.Warn().Err(err).Str(logkey.Branch, name).Msg("no hard limit behind branches.max_changed_bytes on this branch; the sampler still enforces it")
	}
}

// limitAll sets (or, with no cap, clears) the backstop of every branch, as
// the cap may have changed since the last daemon.
func (t *Twin) limitAll(ctx context.Context) {
	limit := int64(t.cfg.Branches.MaxChangedBytes)
	t.mu.Lock()
	var ids, names []string
	for _, b := range t.branches {
		if b.State == stateReady || b.State == api.StateSuspended || b.State == api.StateFailed {
			ids, names = append(ids, b.ID), append(names, b.Name)
		}
	}
	t.mu.Unlock()
	hard := t.backstop(limit)
	set := 0
	for i, id := range ids {
		if ctx.Err() != nil {
			return
		}
		err := t.eng.LimitVolume(ctx, id, hard)
		if errors.Is(err, engine.ErrUnsupported) {
			if limit > 0 {
				t.log.Info().Err(err).Int64(logkey.Limit, limit).Msg("branches.max_changed_bytes is enforced by sampling only, without a hard limit behind it")
			}
			return
		}
		switch {
		case err == nil:
			set++
		case !errors.Is(err, engine.ErrNotFound):
			t.log.Warn().Err(err).Str(logkey.Branch, names[i]).Msg("could not set the hard limit behind branches.max_changed_bytes")
		}
	}
	if limit > 0 && set > 0 {
		t.log.Info().Int64(logkey.Limit, hard).Msgf("hard limit (%s) set behind branches.max_changed_bytes (%s) on %d branches", units.IEC(hard), units.IEC(limit), set)
	}
}
