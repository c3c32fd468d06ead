package twin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// SnapshotOptions shape a snapshot of main.
type SnapshotOptions struct {
	// Name is the snapshot id; empty: s-YYYYMMDDTHHMMSSZ.
	Name string
	// SourceLSN is the source position the snapshot reflects (logical mode).
	SourceLSN string
}

// initMain makes a fresh main when there is none (or a half-made one) and
// starts it, so branches can be made before the first sync.
func (t *Twin) initMain(ctx context.Context) error {
	t.mu.Lock()
	if t.main != nil && t.main.State == stateReady {
		t.mu.Unlock()
		return nil
	}
	gen := 1
	if t.main != nil {
		gen = t.main.Generation + 1
		if old := t.main.Volume; old != "" {
			t.mu.Unlock()
			if err := t.destroy(ctx, old); err != nil {
				return err
			}
			t.mu.Lock()
		}
	}
	port, err := t.eng.AllocatePort(t.portsInUse())
	if err != nil {
		t.mu.Unlock()
		return fmt.Errorf("main: %w", err)
	}
	rec := mainRecord{State: stateCreating, Volume: fmt.Sprintf("main-%d", gen), Port: port,
		Database: sourceDatabase(t.cfg.Source.URL), Generation: gen}
	if err := t.st.saveMain(rec); err != nil {
		t.mu.Unlock()
		return err
	}
	t.main = &rec
	t.mu.Unlock()

	if _, _, err := t.buildMain(ctx, rec.Volume, rec.Port, rec.Database, engine.DatabaseLocale{}); err != nil {
		return fmt.Errorf("make main: %w", err)
	}
	t.mu.Lock()
	err = t.updateMain(func(m *mainRecord) { m.State = stateReady })
	t.mu.Unlock()
	if err != nil {
		return err
	}
	t.log.Info().Str(logkey.Volume, rec.Volume).Int(logkey.Port, port).Str("database", rec.Database).Msg("main twin created")
	return nil
}

// fillSettings run a new main while ReplaceMain's build fills it: no WAL for
// what the fill's transactions create and fill (COPY after TRUNCATE, index
// builds), as nothing streams from it and a crash throws it away. They need
// a restart, which buildAndSnapshot does after the fill.
var fillSettings = map[string]string{"wal_level": "minimal", "max_wal_senders": "0"}

// buildMain initializes volume vol as an empty main: the owner role and the
// database the sync will fill, with locale loc (zero: the cluster's), running
// on port. It returns the locale the database got (see createMainDatabase).
func (t *Twin) buildMain(ctx context.Context, vol string, port int, db string, loc engine.DatabaseLocale) (*engine.Instance, engine.DatabaseLocale, error) {
	var used engine.DatabaseLocale
	if err := t.eng.InitVolume(ctx, vol, engine.InitOptions{Superuser: superuser}); err != nil {
		return nil, used, err
	}
	inst, err := t.eng.Start(ctx, vol, engine.InstanceSpec{Port: port, NoTCP: true})
	if err != nil {
		return nil, used, fmt.Errorf("start new main: %w", err)
	}
	// Database postgres is remade for a locale, from another database.
	admin := "postgres"
	if db == "postgres" && !loc.IsZero() {
		admin = "template1"
	}
	conn, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, admin))
	if err != nil {
		return nil, used, fmt.Errorf("connect to new main: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	role := pgx.Identifier{ownerRole}.Sanitize()
	dbq := pgx.Identifier{db}.Sanitize()
	stmts := []string{"CREATE ROLE " + role + " NOLOGIN"}
	switch {
	case db == "postgres" && loc.IsZero():
		stmts = append(stmts, "ALTER DATABASE postgres OWNER TO "+role)
	case db == "postgres":
		stmts = append(stmts, "DROP DATABASE postgres")
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return nil, used, fmt.Errorf("prepare main: %w", err)
		}
	}
	if db != "postgres" || !loc.IsZero() {
		if used, err = t.createMainDatabase(ctx, conn, dbq, role, loc); err != nil {
			return nil, used, fmt.Errorf("prepare main: %w", err)
		}
	}
	dconn, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, db))
	if err != nil {
		return nil, used, fmt.Errorf("connect to new main: %w", err)
	}
	defer dconn.Close(context.WithoutCancel(ctx))
	// Objects the sync restores land in public; its owner must be able to.
	if _, err := dconn.Exec(ctx, "ALTER SCHEMA public OWNER TO "+role); err != nil {
		return nil, used, fmt.Errorf("prepare main: %w", err)
	}
	return inst, used, nil
}

// startMain makes sure main runs (adopting a running postmaster).
func (t *Twin) startMain(ctx context.Context) (*engine.Instance, error) {
	t.mu.Lock()
	if t.main == nil || t.main.State != stateReady {
		t.mu.Unlock()
		return nil, refuse(ErrNotReady, "main is not ready yet; wait for the daemon to finish starting")
	}
	vol, port := t.main.Volume, t.main.Port
	t.mu.Unlock()
	if inst, ok := t.eng.Instance(vol); ok {
		return inst, nil
	}
	inst, err := t.eng.Start(ctx, vol, t.mainSpec(vol, port))
	if err != nil {
		return nil, fmt.Errorf("start main: %w", err)
	}
	return inst, nil
}

// MainInstance is main's running instance; the sync writes through it as
// inst.Superuser. Only the sync may write main.
func (t *Twin) MainInstance(ctx context.Context) (*engine.Instance, error) {
	return t.startMain(ctx)
}

// MainDatabase is the database in main (and every branch) that the sync fills.
func (t *Twin) MainDatabase() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.main == nil {
		return sourceDatabase(t.cfg.Source.URL)
	}
	return t.main.Database
}

// MainConn connects to main's database as the superuser.
func (t *Twin) MainConn(ctx context.Context) (*pgx.Conn, error) {
	inst, err := t.startMain(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, t.MainDatabase()))
	if err != nil {
		return nil, fmt.Errorf("connect to main: %w", err)
	}
	return conn, nil
}

// TakeSnapshot snapshots main as it is now (consistent even while it runs).
func (t *Twin) TakeSnapshot(ctx context.Context, opts SnapshotOptions) (api.Snapshot, error) {
	if opts.Name != "" {
		if err := ValidateSnapshotName(opts.Name); err != nil {
			return api.Snapshot{}, err
		}
	}
	ctx = context.WithoutCancel(ctx)
	t.mainMu.Lock()
	defer t.mainMu.Unlock()
	t.mu.Lock()
	if t.main == nil || t.main.State != stateReady {
		t.mu.Unlock()
		return api.Snapshot{}, refuse(ErrNotReady, "main is not ready yet; wait for the daemon to finish starting")
	}
	vol := t.main.Volume
	t.mu.Unlock()
	rec, err := t.snapshotVolume(ctx, vol, MainName, opts)
	if err != nil {
		return api.Snapshot{}, err
	}
	t.kickSweeper()
	return t.snapshotView(rec), nil
}

// snapshotVolume records, then takes, a snapshot of volume vol.
func (t *Twin) snapshotVolume(ctx context.Context, vol, origin string, opts SnapshotOptions) (snapshotRecord, error) {
	t.mu.Lock()
	rec, err := t.newSnapshotRecord(origin, opts)
	t.mu.Unlock()
	if err != nil {
		return snapshotRecord{}, err
	}
	if err := t.fillSnapshot(ctx, vol, rec.ID); err != nil {
		return snapshotRecord{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return *t.snaps[rec.ID], nil
}

// newSnapshotRecord records a snapshot in state creating. Call with t.mu held.
func (t *Twin) newSnapshotRecord(origin string, opts SnapshotOptions) (*snapshotRecord, error) {
	now := time.Now().UTC()
	id := opts.Name
	if id != "" {
		if _, ok := t.snaps[id]; ok {
			return nil, refuse(ErrConflict, "snapshot %q already exists; choose another name", id)
		}
	} else {
		base := snapshotID(now)
		id = base
		for i := 2; t.snaps[id] != nil; i++ {
			id = fmt.Sprintf("%s-%d", base, i)
		}
	}
	rec := &snapshotRecord{ID: id, Volume: "snap-" + randomHex(6), Origin: origin, State: stateCreating, CreatedAt: now}
	if opts.SourceLSN != "" {
		lsn := opts.SourceLSN
		rec.SourceLSN = &lsn
	}
	if err := t.st.saveSnapshot(*rec); err != nil {
		return nil, err
	}
	t.snaps[id] = rec
	return rec, nil
}

// fillSnapshot takes the recorded snapshot id of volume vol and marks it
// ready; on failure the record is dropped.
func (t *Twin) fillSnapshot(ctx context.Context, vol, id string) error {
	t.mu.Lock()
	rec := t.snaps[id]
	snapVol := rec.Volume
	t.mu.Unlock()
	start := time.Now()
	if err := t.snapshotMain(ctx, vol, snapVol, id); err != nil {
		t.mu.Lock()
		delete(t.snaps, id)
		rerr := t.st.removeSnapshot(id)
		t.mu.Unlock()
		if rerr != nil {
			t.log.Error().Err(rerr).Str(logkey.Snapshot, id).Msg("could not drop record of failed snapshot")
		}
		return fmt.Errorf("snapshot %s: %w", vol, err)
	}
	var size int64
	if u, err := t.eng.Usage(ctx, snapVol); err == nil {
		size = u.TotalBytes
	}
	t.mu.Lock()
	err := t.updateSnapshot(rec, func(r *snapshotRecord) { r.State = stateReady; r.SizeBytes = size })
	t.mu.Unlock()
	if err != nil {
		return err
	}
	t.log.Info().Str(logkey.Snapshot, id).Str(logkey.Volume, vol).Dur(logkey.Duration, time.Since(start)).Msg("snapshot taken")
	return nil
}

// ReplaceMain builds a new main beside the current one: an empty cluster with
// the owner role and database, running, handed to build. The database has
// locale loc, the source database's (zero: the cluster's default; one this
// host lacks: the default and a warning). When build
// succeeds the new main is snapshotted and becomes main; the old main volume
// is destroyed, while snapshots and branches stay as they are. When anything
// fails the new volume is removed and nothing else has changed; a build that
// ran the pool out of space fails with engine.ErrNoSpace.
func (t *Twin) ReplaceMain(ctx context.Context, loc engine.DatabaseLocale, build func(ctx context.Context, inst *engine.Instance) error) (api.Snapshot, error) {
	t.mainMu.Lock()
	defer t.mainMu.Unlock()
	t.mu.Lock()
	if t.main == nil || t.main.State != stateReady {
		t.mu.Unlock()
		return api.Snapshot{}, refuse(ErrNotReady, "main is not ready yet; wait for the daemon to finish starting")
	}
	port, err := t.eng.AllocatePort(t.portsInUse())
	if err != nil {
		t.mu.Unlock()
		return api.Snapshot{}, fmt.Errorf("replace main: %w", err)
	}
	gen := t.main.Generation + 1
	vol := fmt.Sprintf("main-%d", gen)
	db := t.main.Database
	if err := t.updateMain(func(m *mainRecord) { m.Pending = vol; m.PendingPort = port }); err != nil {
		t.mu.Unlock()
		return api.Snapshot{}, err
	}
	t.mu.Unlock()

	snap, err := t.buildAndSnapshot(ctx, vol, port, db, loc, build)
	if err != nil {
		cctx := context.WithoutCancel(ctx)
		if derr := t.destroy(cctx, vol); derr != nil {
			t.log.Error().Err(derr).Str(logkey.Volume, vol).Msg("could not remove the new main of a failed replace; the next start removes it")
			return api.Snapshot{}, err
		}
		t.mu.Lock()
		if uerr := t.updateMain(func(m *mainRecord) { m.Pending = ""; m.PendingPort = 0 }); uerr != nil {
			t.log.Error().Err(uerr).Msg("could not record the end of a failed replace")
		}
		t.mu.Unlock()
		return api.Snapshot{}, err
	}

	t.mu.Lock()
	old := t.main.Volume
	err = t.updateMain(func(m *mainRecord) {
		m.Volume, m.Port, m.Generation = vol, port, gen
		m.Pending, m.PendingPort = "", 0
	})
	t.mu.Unlock()
	if err != nil {
		return api.Snapshot{}, err
	}
	if derr := t.destroy(context.WithoutCancel(ctx), old); derr != nil {
		t.log.Error().Err(derr).Str(logkey.Volume, old).Msg("could not remove the replaced main; the next start removes it")
	}
	t.log.Info().Str(logkey.Volume, vol).Str(logkey.Snapshot, snap.ID).Int(logkey.Port, port).Msg("main replaced")
	t.kickSweeper()
	return t.snapshotView(snap), nil
}

// buildAndSnapshot makes, fills and snapshots the new main: a clone of the
// template, run with fillSettings while build fills it, then stopped (which
// drops them), snapshotted as it lies (a running main would have to be
// copied, recovered by a start and stopped again) and started again. A
// crash before the switch throws the volume away, so build may trade crash
// safety for speed as long as it leaves the cluster durable (the sync's
// fill ends with a checkpoint and a sync of the filesystem).
func (t *Twin) buildAndSnapshot(ctx context.Context, vol string, port int, db string, loc engine.DatabaseLocale, build func(ctx context.Context, inst *engine.Instance) error) (snapshotRecord, error) {
	tmpl, err := t.mainTemplate(ctx, port, db, loc)
	if err != nil {
		return snapshotRecord{}, fmt.Errorf("build new main: %w", err)
	}
	if err := t.eng.Clone(ctx, tmpl, vol); err != nil {
		return snapshotRecord{}, fmt.Errorf("build new main: %w", err)
	}
	inst, err := t.eng.Start(ctx, vol, engine.InstanceSpec{Port: port, NoTCP: true, Settings: fillSettings})
	if err != nil {
		return snapshotRecord{}, fmt.Errorf("build new main: %w", err)
	}
	// Every fill, dump or logical rebuild, is watched the same way: one
	// that runs the pool out of space is reported as a full disk.
	w := t.eng.WatchSpace(vol)
	if err := w.Done(build(ctx, inst)); err != nil {
		return snapshotRecord{}, err
	}
	ctx = context.WithoutCancel(ctx)
	if err := t.eng.Stop(ctx, vol); err != nil {
		return snapshotRecord{}, fmt.Errorf("stop new main: %w", err)
	}
	rec, err := t.snapshotVolume(ctx, vol, MainName, SnapshotOptions{})
	if err != nil {
		return snapshotRecord{}, err
	}
	if _, err := t.eng.Start(ctx, vol, t.mainSpec(vol, port)); err != nil {
		return snapshotRecord{}, fmt.Errorf("start new main: %w", err)
	}
	return rec, nil
}

// mainTemplate returns the template volume, making it first when there is
// none for this PostgreSQL version, database and locale: an empty main
// (initdb, the owner role and database), stopped, that every ReplaceMain
// clones, so a sync pays for initdb once rather than each time (and again
// only when the source's locale changes). A crash while it is made leaves
// an unrecorded volume, which the next start removes.
func (t *Twin) mainTemplate(ctx context.Context, port int, db string, loc engine.DatabaseLocale) (string, error) {
	key := t.eng.Version() + " " + db
	if !loc.IsZero() {
		key += " " + loc.String()
	}
	t.mu.Lock()
	old, oldKey, oldUsed := t.main.Template, t.main.TemplateKey, t.main.TemplateLocale
	t.mu.Unlock()
	if old != "" && oldKey == key {
		if _, err := t.eng.Usage(ctx, old); err == nil {
			if oldUsed != "" && oldUsed != loc.String() {
				// Said when the template was made; said again on every
				// sync, so the warning is not lost in old logs.
				t.log.Warn().Str(logkey.Locale, loc.String()).Str(logkey.LocaleUsed, oldUsed).
					Msg("the source database's locale is not available on this host: the twin's database uses another, so text may sort differently")
			}
			return old, nil
		}
	}
	vol := "tmpl-" + randomHex(6)
	_, used, err := t.buildMain(ctx, vol, port, db, loc)
	if err != nil {
		t.destroy(context.WithoutCancel(ctx), vol)
		return "", fmt.Errorf("main template: %w", err)
	}
	if err := t.eng.Stop(ctx, vol); err != nil {
		t.destroy(context.WithoutCancel(ctx), vol)
		return "", fmt.Errorf("main template: %w", err)
	}
	t.mu.Lock()
	err = t.updateMain(func(m *mainRecord) { m.Template, m.TemplateKey, m.TemplateLocale = vol, key, used.String() })
	t.mu.Unlock()
	if err != nil {
		t.destroy(context.WithoutCancel(ctx), vol)
		return "", err
	}
	if old != "" {
		if err := t.destroy(context.WithoutCancel(ctx), old); err != nil {
			t.log.Warn().Err(err).Str(logkey.Volume, old).Msg("could not remove the old main template; the next start removes it")
		}
	}
	t.log.Info().Str(logkey.Volume, vol).Str(logkey.Locale, used.String()).Msg("main template made")
	return vol, nil
}

// destroy removes a volume (stopping its instance); missing is fine.
func (t *Twin) destroy(ctx context.Context, vol string) error {
	if err := t.eng.Destroy(ctx, vol); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	return nil
}

// mainSnapshots are main's ready snapshots, newest first. Call with t.mu held.
func (t *Twin) mainSnapshots() []*snapshotRecord {
	var out []*snapshotRecord
	for _, s := range t.snaps {
		if s.Origin == MainName && s.State == stateReady {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out
}
