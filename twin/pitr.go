package twin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// Exact --at in logical mode (snapshots.pitr_window). Main archives its WAL
// (masked data only) under data_dir/wal-archive/<system identifier>; the
// sync records, in every twin transaction it commits, the range of source
// commit times it holds (pgtwin_sync.pitr_map, one row per transaction,
// never straddling a whole second). A branch at TIME is the newest snapshot
// taken before the last such transaction that ends at or before TIME,
// recovered from the archive up to and including it, then promoted.

// pitrEngine is what exact --at needs from package engine.
type pitrEngine interface {
	PrepareArchiveDir(dir string) error
	SystemID(id string) (uint64, error)
	SnapshotUnsettled(ctx context.Context, src, id string) error
	PrepareRecovery(id string, r engine.Recovery) (map[string]string, error)
	WaitPromoted(ctx context.Context, inst *engine.Instance) error
}

var _ pitrEngine = (*engine.Engine)(nil)

// pitrBase is what a snapshot of main taken while it archived knows, so it
// can be the start of a recovery: the cluster it is of, the oldest archived
// segment its recovery reads, and the sync's transactions around it (every
// one up to Before is in it, none after After).
type pitrBase struct {
	SystemID uint64 `json:"system_id"`
	RedoWAL  string `json:"redo_wal"`
	Before   uint64 `json:"before_xid"`
	After    uint64 `json:"after_xid"`
}

// pitrTarget is an exact --at: the recovery a branch's clone goes through
// (XID 0: none, the snapshot itself is that moment).
type pitrTarget struct {
	SystemID uint64 `json:"system_id"`
	XID      uint64 `json:"xid,omitempty"`
}

// pitrPlan is what the map says about a time: the last twin transaction
// ending at or before it, and the first after it (0: none yet).
type pitrPlan struct {
	at     time.Time
	sysID  uint64
	target uint64
	next   uint64
}

func (t *Twin) pitrEng() (pitrEngine, bool) {
	if t.cfg.Sync.Mode != "logical" || t.cfg.Snapshots.PITRWindow <= 0 {
		return nil, false
	}
	pe, ok := t.eng.(pitrEngine)
	return pe, ok
}

func (t *Twin) archiveDir(sysID uint64) string {
	return filepath.Join(t.cfg.Daemon.DataDir, "wal-archive", strconv.FormatUint(sysID, 10))
}

// mainSpec is how main runs once filled: archiving when the window is on.
// An archive that cannot be prepared is logged and main runs without: --at
// then falls back to snapshots rather than main staying down.
func (t *Twin) mainSpec(vol string, port int) engine.InstanceSpec {
	spec := engine.InstanceSpec{Port: port, NoTCP: true}
	pe, ok := t.pitrEng()
	if !ok {
		return spec
	}
	sys, err := pe.SystemID(vol)
	if err == nil {
		dir := t.archiveDir(sys)
		if err = pe.PrepareArchiveDir(dir); err == nil {
			spec.Settings = engine.ArchiveSettings(dir)
			return spec
		}
	}
	t.log.Error().Err(err).Str(logkey.Volume, vol).Msg("main runs without WAL archiving; branches --at fall back to snapshots")
	return spec
}

// snapshotMain takes snapshot snapVol of volume vol: of a running, archiving
// main unsettled and recorded as a recovery base, else as always.
func (t *Twin) snapshotMain(ctx context.Context, vol, snapVol, id string) error {
	pe, ok := t.pitrEng()
	t.mu.Lock()
	isMain := t.main != nil && t.main.Volume == vol
	t.mu.Unlock()
	inst, running := t.eng.Instance(vol)
	if !ok || !isMain || !running {
		return t.eng.Snapshot(ctx, vol, snapVol)
	}
	sys, err := pe.SystemID(vol)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, t.MainDatabase()))
	if err != nil {
		return fmt.Errorf("connect to main: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var archiving bool
	if err := conn.QueryRow(ctx, "SELECT pg_catalog.current_setting('archive_mode') <> 'off'").Scan(&archiving); err != nil || !archiving {
		return t.eng.Snapshot(ctx, vol, snapVol)
	}
	// A checkpoint first keeps the replay of every clone short.
	base := pitrBase{SystemID: sys}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint main: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT pg_catalog.pg_walfile_name(redo_lsn) FROM pg_catalog.pg_control_checkpoint()").Scan(&base.RedoWAL); err != nil {
		return fmt.Errorf("main's redo position: %w", err)
	}
	if base.Before, err = lastGroup(ctx, conn); err != nil {
		return err
	}
	if err := pe.SnapshotUnsettled(ctx, vol, snapVol); err != nil {
		return err
	}
	if base.After, err = lastGroup(ctx, conn); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.snaps[id]; s != nil {
		return t.updateSnapshot(s, func(r *snapshotRecord) { r.PITR = &base })
	}
	return nil
}

// lastGroup is the newest twin transaction in the map (0: none or no map).
func lastGroup(ctx context.Context, conn *pgx.Conn) (uint64, error) {
	var s string
	err := conn.QueryRow(ctx, `SELECT CASE WHEN pg_catalog.to_regclass('pgtwin_sync.pitr_map') IS NULL THEN '0'
		ELSE (SELECT COALESCE(pg_catalog.max(xid)::text, '0') FROM pgtwin_sync.pitr_map) END`).Scan(&s)
	if err != nil {
		return 0, fmt.Errorf("read pgtwin_sync.pitr_map: %w", err)
	}
	return strconv.ParseUint(s, 10, 64)
}

// planAt reads the map for at, truncated to the second. nil: no exact --at
// (off, dump mode, outside the window, before the first recorded
// transaction, or the twin has not applied up to at yet); why is logged.
func (t *Twin) planAt(ctx context.Context, at time.Time) *pitrPlan {
	pe, ok := t.pitrEng()
	if !ok {
		return nil
	}
	at = at.Truncate(time.Second)
	log := t.log.With().Time("at", at).Logger()
	if at.Before(time.Now().Add(-t.cfg.Snapshots.PITRWindow.D())) {
		log.Info().Msg("--at is before snapshots.pitr_window; a snapshot stands in")
		return nil
	}
	t.mu.Lock()
	vol := ""
	if t.main != nil && t.main.State == stateReady {
		vol = t.main.Volume
	}
	t.mu.Unlock()
	if vol == "" {
		return nil
	}
	sys, err := pe.SystemID(vol)
	if err != nil {
		log.Warn().Err(err).Msg("no exact --at")
		return nil
	}
	conn, err := t.MainConn(ctx)
	if err != nil {
		log.Warn().Err(err).Msg("no exact --at")
		return nil
	}
	defer conn.Close(context.WithoutCancel(ctx))
	p := &pitrPlan{at: at, sysID: sys}
	// Everything up to at must be in the twin: a transaction after it is,
	// or the sync has caught up; a short lag is waited out.
	for deadline := time.Now().Add(15 * time.Second); ; {
		if p.target, p.next, err = mapAround(ctx, conn, at); err != nil {
			log.Warn().Err(err).Msg("no exact --at")
			return nil
		}
		if p.target == 0 {
			log.Info().Msg("no recorded sync transaction at or before --at; a snapshot stands in")
			return nil
		}
		if p.next != 0 || time.Since(at) > 2*time.Second && t.syncCaughtUp() {
			log.Debug().Uint64("target_xid", p.target).Uint64("next_xid", p.next).Msg("exact --at planned")
			return p
		}
		if time.Now().After(deadline) {
			log.Info().Msg("the twin has not applied up to --at yet; a snapshot stands in")
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// mapAround is the last twin transaction in the map ending at or before at
// and the first ending after it (0: none).
func mapAround(ctx context.Context, conn *pgx.Conn, at time.Time) (target, next uint64, err error) {
	// ORDER BY m.xid, not xid: that would be the text output column.
	var ts, ns string
	err = conn.QueryRow(ctx, `SELECT
		COALESCE((SELECT m.xid::text FROM pgtwin_sync.pitr_map m WHERE m.last_commit <= $1 ORDER BY m.xid DESC LIMIT 1), '0'),
		COALESCE((SELECT m.xid::text FROM pgtwin_sync.pitr_map m WHERE m.last_commit > $1 ORDER BY m.xid LIMIT 1), '0')`, at).Scan(&ts, &ns)
	if err != nil {
		return 0, 0, fmt.Errorf("read pgtwin_sync.pitr_map: %w", err)
	}
	if target, err = strconv.ParseUint(ts, 10, 64); err != nil {
		return 0, 0, err
	}
	next, err = strconv.ParseUint(ns, 10, 64)
	return target, next, err
}

// syncCaughtUp says the follower streams with nothing received from the
// source waiting to be made durable (as of its last slot reading, within
// sync's status interval): with the source idle since at, the twin's
// newest transaction is that moment.
func (t *Twin) syncCaughtUp() bool {
	s := t.getSyncer()
	if s == nil {
		return false
	}
	st := s.Status()
	return st.State == api.SyncStreaming && (st.LagBytes != nil && *st.LagBytes == 0 || st.LagSeconds != nil && *st.LagSeconds == 0)
}

// pickMainAt is pickMainSnapshot with an exact plan: the newest base of
// main's current cluster that is that moment, or is older than it and can
// be recovered to it. Call with t.mu held.
func (t *Twin) pickMainAt(at time.Time, useAt bool, p *pitrPlan) (*snapshotRecord, *pitrTarget, error) {
	if p != nil {
		for _, s := range t.mainSnapshots() {
			b := s.PITR
			if b == nil || b.SystemID != p.sysID {
				continue
			}
			if b.Before >= p.target && b.After == b.Before && (p.next == 0 || b.After < p.next) {
				return s, &pitrTarget{SystemID: p.sysID}, nil
			}
			if b.After < p.target {
				return s, &pitrTarget{SystemID: p.sysID, XID: p.target}, nil
			}
		}
		t.log.Info().Time("at", p.at).Msg("no snapshot of main can be recovered to --at; a snapshot stands in")
	}
	s, err := t.pickMainSnapshot(at, useAt)
	return s, nil, err
}

// pitrStart arms the fresh clone id for its recovery to rec.PITR, first
// having main archive the segment the target's commit is in: the archive
// holds finished segments only. The one segment switch per --at is the
// price of not copying main's open segment.
func (t *Twin) pitrStart(ctx context.Context, id string, tgt *pitrTarget, spec *engine.InstanceSpec) error {
	if tgt == nil || tgt.XID == 0 {
		return nil
	}
	pe, ok := t.eng.(pitrEngine)
	if !ok {
		return errors.New("the engine cannot recover to a point in time")
	}
	limits, err := t.archiveNow(ctx)
	if err != nil {
		return err
	}
	settings, err := pe.PrepareRecovery(id, engine.Recovery{ArchiveDir: t.archiveDir(tgt.SystemID), TargetXID: strconv.FormatUint(tgt.XID, 10)})
	if err != nil {
		return err
	}
	merged := make(map[string]string, len(spec.Settings)+len(settings)+len(limits))
	for _, m := range []map[string]string{spec.Settings, limits, settings} {
		for k, v := range m {
			merged[k] = v
		}
	}
	spec.Settings = merged
	return nil
}

// pitrDone waits for a recovering branch to promote.
func (t *Twin) pitrDone(ctx context.Context, inst *engine.Instance, tgt *pitrTarget) error {
	if tgt == nil || tgt.XID == 0 {
		return nil
	}
	pe, ok := t.eng.(pitrEngine)
	if !ok {
		return errors.New("the engine cannot recover to a point in time")
	}
	return pe.WaitPromoted(ctx, inst)
}

// hotStandbyLimits are the settings a recovering hot standby must have at
// least as high as main had; the branch runs with main's until its next
// start.
var hotStandbyLimits = []string{"max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions", "max_locks_per_transaction"}

// archiveNow ends main's current WAL segment and waits until the archiver
// has it (the map's transactions are all in or before it). It returns
// main's hotStandbyLimits.
func (t *Twin) archiveNow(ctx context.Context) (map[string]string, error) {
	conn, err := t.MainConn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	limits := map[string]string{}
	for _, k := range hotStandbyLimits {
		var v string
		if err := conn.QueryRow(ctx, "SELECT pg_catalog.current_setting($1)", k).Scan(&v); err != nil {
			return nil, fmt.Errorf("read main's %s: %w", k, err)
		}
		limits[k] = v
	}
	var want string
	if err := conn.QueryRow(ctx, "SELECT pg_catalog.pg_walfile_name(pg_catalog.pg_switch_wal())").Scan(&want); err != nil {
		return nil, fmt.Errorf("switch main's WAL segment: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var done bool
		var failed string
		err := conn.QueryRow(ctx, `SELECT COALESCE(last_archived_wal >= $1, false), COALESCE(last_failed_wal, '')
			FROM pg_catalog.pg_stat_archiver`, want).Scan(&done, &failed)
		if err != nil {
			return nil, fmt.Errorf("read main's archiver: %w", err)
		}
		if done {
			return limits, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("main has not archived WAL segment %s after 2 minutes (last failed: %q); see main's log", want, failed)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pitrAnchor is the recovery base the window's start needs: the newest
// taken at or before it, or else the oldest (the window is not full yet).
// Kept beyond snapshots.keep; the archive is trimmed to it. Call with t.mu
// held.
func (t *Twin) pitrAnchor() *snapshotRecord {
	if _, ok := t.pitrEng(); !ok {
		return nil
	}
	start := time.Now().Add(-t.cfg.Snapshots.PITRWindow.D())
	var oldest *snapshotRecord
	// Only the newest base's cluster counts: older mains' bases anchor
	// nothing. Snapshots come newest first.
	var sys uint64
	for _, s := range t.mainSnapshots() {
		if s.PITR == nil || sys != 0 && s.PITR.SystemID != sys {
			continue
		}
		sys = s.PITR.SystemID
		if !s.CreatedAt.After(start) {
			return s
		}
		oldest = s
	}
	return oldest
}

// trimArchive drops the segments no recovery in the window can need: those
// before the anchor's redo point, and the archives of replaced mains.
func (t *Twin) trimArchive(ctx context.Context) {
	pe, ok := t.pitrEng()
	if !ok {
		return
	}
	t.mu.Lock()
	var anchor pitrBase
	if a := t.pitrAnchor(); a != nil {
		anchor = *a.PITR
	}
	vol := ""
	if t.main != nil {
		vol = t.main.Volume
	}
	t.mu.Unlock()
	cur, err := pe.SystemID(vol)
	if err != nil {
		return // main is being made; next round
	}
	root := filepath.Join(t.cfg.Daemon.DataDir, "wal-archive")
	des, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, de := range des {
		sys, err := strconv.ParseUint(de.Name(), 10, 64)
		if err != nil || !de.IsDir() {
			continue
		}
		dir := filepath.Join(root, de.Name())
		switch {
		case sys == anchor.SystemID:
			n, err := engine.TrimArchive(dir, anchor.RedoWAL)
			if err != nil {
				t.log.Warn().Err(err).Str("dir", dir).Msg("could not trim the WAL archive")
			} else if n > 0 {
				t.log.Info().Int("segments", n).Str("keep_from", anchor.RedoWAL).Msg("WAL archive trimmed to snapshots.pitr_window")
			}
		case sys != cur:
			if err := os.RemoveAll(dir); err != nil {
				t.log.Warn().Err(err).Str("dir", dir).Msg("could not remove the WAL archive of a replaced main")
			} else {
				t.log.Info().Str("dir", dir).Msg("WAL archive of a replaced main removed")
			}
		}
	}
}

// pitrStatus is the window for pgtwin status: from when --at is exact, and
// what the archive holds.
func (t *Twin) pitrStatus() *api.PITRStatus {
	pe, ok := t.pitrEng()
	if !ok {
		return nil
	}
	w := t.cfg.Snapshots.PITRWindow.D()
	st := &api.PITRStatus{Window: w.String()}
	t.mu.Lock()
	vol := ""
	if t.main != nil {
		vol = t.main.Volume
	}
	var oldest *snapshotRecord
	for _, s := range t.mainSnapshots() {
		if s.PITR != nil {
			oldest = s
		}
	}
	t.mu.Unlock()
	sys, err := pe.SystemID(vol)
	if err != nil {
		return st
	}
	if oldest != nil && oldest.PITR.SystemID == sys {
		from := time.Now().Add(-w).Truncate(time.Second)
		if oldest.CreatedAt.After(from) {
			from = oldest.CreatedAt.Truncate(time.Second).Add(time.Second)
		}
		st.From = &from
	}
	if u, err := engine.ArchiveStat(t.archiveDir(sys)); err == nil {
		st.ArchiveSegments, st.ArchiveBytes = u.Segments, u.Bytes
	}
	return st
}
