package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/engine"
)

// A sync that dies on PostgreSQL's disk_full error is reported as the disk
// being full even when free space has come back by the time we look (the
// failed run's files are removed first).
func TestDiskFullNamesTheCause(t *testing.T) {
	dir := t.TempDir()
	noLog := filepath.Join(dir, "missing.log")
	full := fmt.Errorf("sync step copy: table %q: %w", "public.events",
		&pgconn.PgError{Code: "53100", Message: `could not extend file "base/1/2": wrote only 4096 of 8192 bytes`})
	if err := diskFull(full, dir, noLog); !errors.Is(err, engine.ErrNoSpace) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("disk_full error: got %v, want it named as no space left", err)
	}
	// Only the text survived (an error flattened on the way): still recognised.
	flat := errors.New(`sync step copy: ERROR: could not extend file "base/1/2" (SQLSTATE 53100)`)
	if err := diskFull(flat, dir, noLog); !errors.Is(err, engine.ErrNoSpace) {
		t.Fatalf("flattened disk_full error: got %v", err)
	}
	// Any other failure on a roomy disk is left as it is.
	other := &pgconn.PgError{Code: "23505", Message: "duplicate key"}
	if err := diskFull(other, dir, noLog); errors.Is(err, engine.ErrNoSpace) {
		t.Fatalf("unique violation reported as a full disk: %v", err)
	}
}
