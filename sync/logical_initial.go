package twinsync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// progressDDL is the twin's record of how far it follows the source. It is
// written in the same transaction as the changes it counts.
const progressDDL = `CREATE SCHEMA IF NOT EXISTS pgtwin_sync;
CREATE TABLE IF NOT EXISTS pgtwin_sync.progress (
	slot text PRIMARY KEY,
	lsn pg_lsn NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
)`

const progressUpsert = `INSERT INTO pgtwin_sync.progress (slot, lsn, updated_at) VALUES ($1, $2::pg_lsn, now())
	ON CONFLICT (slot) DO UPDATE SET lsn = excluded.lsn, updated_at = excluded.updated_at`

// Fill makes tgt, a fresh empty main, a masked copy of the source as of a
// new slot's consistent point, ready for Start to stream from: it checks
// the source, makes the publication, replaces the slot (one with an
// exported snapshot), copies schema and rows in that snapshot through the
// dump-mode steps, and records the consistent point in the twin. p, if not
// nil, shows the copy's progress.
func (f *follower) Fill(ctx context.Context, tgt target, p *progress) (err error) {
	f.defaults()
	if p == nil {
		p = &progress{}
	}
	if tgt.Owner == "" {
		tgt.Owner = defaultOwner
	}
	start := time.Now()
	p.begin(start)
	log := f.logger()
	d := f.dumper()
	r := &run{d: d, tgt: tgt, p: p, log: log, parallel: f.Parallel}
	defer r.close()

	step := stepConnect
	defer func() {
		if err != nil {
			err = &stepError{Step: step, Err: err}
		}
	}()
	if f.Plan == nil {
		return errors.New("no masking plan: refusing to copy unmasked rows")
	}
	if err := r.connect(ctx); err != nil {
		return err
	}
	sel, err := f.syncedSelection(ctx, r.src, true)
	if err != nil {
		return err
	}
	d.Selection = sel
	if err := checkSource(ctx, r.src, sel); err != nil {
		return err
	}

	step = stepPlan
	p.setStep(step)
	masker, err := f.Plan(ctx, r.src)
	if err != nil {
		return fmt.Errorf("masking plan: %w", err)
	}
	if masker == nil {
		return errors.New("masking plan returned no masker")
	}

	step = stepSchema
	p.setStep(step)
	if err := f.ensurePublication(ctx, r.src); err != nil {
		return err
	}
	if err := f.dropSlotSQL(ctx, r.src); err != nil {
		return err
	}
	cfg, err := f.Source.connConfig()
	if err != nil {
		return err
	}
	repl, err := pgoutput.ConnectConfig(ctx, &cfg.Config)
	if err != nil {
		return fmt.Errorf("source replication connection: %w", redact(err))
	}
	// The exported snapshot lives while repl stays idle: close it only once
	// every worker has imported it (the copy is done).
	defer repl.Close(context.WithoutCancel(ctx))
	slot, err := repl.CreateReplicationSlot(ctx, f.Slot, "pgoutput", pgoutput.SlotOptions{Snapshot: pgoutput.SnapshotExport})
	if err != nil {
		return fmt.Errorf("%w (the source needs a free slot: raise max_replication_slots, or drop unused slots)", redact(err))
	}
	log.Info().Str(logkey.Slot, f.Slot).Str(logkey.LSN, slot.ConsistentPoint.String()).Msg("replication slot created")
	if err := f.joinSlotSnapshot(ctx, r, slot.SnapshotName); err != nil {
		return err
	}
	if err := r.fill(ctx, masker, &step); err != nil {
		return err
	}
	if _, err := r.tgtConn.Exec(ctx, progressDDL); err != nil {
		return fmt.Errorf("progress table: %w", redact(err))
	}
	if _, err := r.tgtConn.Exec(ctx, progressUpsert, f.Slot, slot.ConsistentPoint.String()); err != nil {
		return fmt.Errorf("progress table: %w", redact(err))
	}
	if f.UsePublication {
		if err := recordOutside(ctx, r.tgtConn, f.Slot, sel); err != nil {
			return err
		}
	}
	p.setStep(stepDone)
	st := p.Stats()
	log.Info().Int(logkey.Tables, st.TablesTotal).Int64(logkey.Rows, st.Rows).Str(logkey.LSN, slot.ConsistentPoint.String()).
		Dur(logkey.Duration, time.Since(start)).Msg("initial copy finished")
	return nil
}

// joinSlotSnapshot stands the slot's exported snapshot in for the one a
// dump run exports itself: the coordinator imports it, and pg_dump and the
// copy workers join it as they would a dump's.
func (f *follower) joinSlotSnapshot(ctx context.Context, r *run, name string) error {
	conn, err := r.d.connectSource(ctx)
	if err != nil {
		return err
	}
	c := &coordinator{conn: conn, snapshot: name}
	if err := c.importSnapshot(ctx, conn); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("join the slot's snapshot: %w", redact(err))
	}
	r.coord = c
	return nil
}

// readProgress returns the LSN the twin has applied up to, and false when
// this slot never filled it.
func readProgress(ctx context.Context, conn *pgx.Conn, slot string) (pgoutput.LSN, bool, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('pgtwin_sync.progress') IS NOT NULL").Scan(&exists); err != nil {
		return 0, false, fmt.Errorf("read progress: %w", redact(err))
	}
	if !exists {
		return 0, false, nil
	}
	var s string
	err := conn.QueryRow(ctx, "SELECT lsn::text FROM pgtwin_sync.progress WHERE slot = $1", slot).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read progress: %w", redact(err))
	}
	lsn, err := pgoutput.ParseLSN(s)
	return lsn, err == nil, err
}
