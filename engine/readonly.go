package engine

import (
	"fmt"
	"path/filepath"

	"github.com/pgtwin/pgtwin/internal/durable"
	"github.com/pgtwin/pgtwin/internal/logkey"
)

// readOnlySignal in a data directory makes its postmaster start as a hot
// standby. With neither primary_conninfo nor restore_command it replays its
// own pg_wal, reaches consistency and serves queries, and every session is
// read-only: unlike default_transaction_read_only, which any session may
// SET back off, nothing short of a promotion (pg_promote, superuser only)
// lifts it. PostgreSQL removes the file only when promoted, so it lasts
// across restarts, suspends and crashes.
const readOnlySignal = "standby.signal"

// SetReadOnly decides how volume id's instance runs from its next start on:
// on, as a read-only hot standby of nothing; off, as a normal writable
// server (a data directory last run as a standby starts with crash recovery
// and then accepts writes). The instance must not be running, so a running
// instance is a standby exactly when ReadOnly says so.
//
// Clones never inherit it: Clone removes the file (scrub), so a branch of a
// read-only branch, or the snapshot a reset takes of one, is writable.
func (e *Engine) SetReadOnly(id string, on bool) error {
	if err := e.checkID(id); err != nil {
		return err
	}
	defer e.lock(id)()
	pgdata := e.DataPath(id)
	if !exists(filepath.Join(pgdata, "PG_VERSION")) {
		return fmt.Errorf("set read-only %s: %w", id, ErrNotFound)
	}
	if inst, _, ok := e.instance(id); ok {
		return fmt.Errorf("set read-only %s: postmaster %d is running; stop it first", id, inst.PID)
	}
	p := filepath.Join(pgdata, readOnlySignal)
	if !on {
		if !exists(p) {
			return nil
		}
		if err := durable.Remove(p); err != nil {
			return fmt.Errorf("set read-only %s: %w", id, noSpace(err))
		}
		e.log.Info().Str(logkey.Volume, id).Msg("instance starts writable from now on")
		return nil
	}
	if exists(p) {
		return nil
	}
	if err := durable.WriteFile(p, nil, 0o600); err != nil {
		return fmt.Errorf("set read-only %s: %w", id, noSpace(err))
	}
	if err := e.user.chown(p); err != nil {
		return fmt.Errorf("set read-only %s: %w", id, err)
	}
	e.log.Info().Str(logkey.Volume, id).Msg("instance starts read-only (hot standby) from now on")
	return nil
}

// ReadOnly says whether volume id's instance runs, or will run at its next
// start, as a read-only standby.
func (e *Engine) ReadOnly(id string) bool {
	if e.checkID(id) != nil {
		return false
	}
	return exists(filepath.Join(e.DataPath(id), readOnlySignal))
}
