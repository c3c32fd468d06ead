package twinsync

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Extensions are created on the twin by the superuser from this host's
// PostgreSQL share directory. One the source has and this host lacks
// cannot be restored (its types, functions and operators are what columns
// and indexes use), so the sync refuses it before the copy starts and `mask
// plan` warns of it, each with the package to install.

// sourceExtension is one row of the source's pg_extension.
type sourceExtension struct{ name, schema, version string }

func sourceExtensions(ctx context.Context, src *pgx.Conn) ([]sourceExtension, error) {
	rows, err := src.Query(ctx, `SELECT e.extname::text, n.nspname::text, e.extversion FROM pg_catalog.pg_extension e
		JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY e.oid`)
	if err != nil {
		return nil, fmt.Errorf("source extensions: %w", err)
	}
	exts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sourceExtension, error) {
		var e sourceExtension
		return e, row.Scan(&e.name, &e.schema, &e.version)
	})
	if err != nil {
		return nil, fmt.Errorf("source extensions: %w", err)
	}
	return exts, nil
}

// errMissingExtension marks a refusal for an extension this host lacks.
var errMissingExtension = errors.New("missing extension")

// missingExtensions returns, one sentence each, the source's extensions
// that available does not have, and nil when none is missing.
func missingExtensions(exts []sourceExtension, available map[string]bool, major int) []string {
	var out []string
	for _, e := range exts {
		if !available[e.name] {
			out = append(out, missingExtensionSentence(e, major))
		}
	}
	return out
}

// debPackages name the Debian packages (PGDG naming, %d the major version)
// of extensions found outside postgresql-contrib.
var debPackages = map[string]string{
	"vector": "postgresql-%d-pgvector", "postgis": "postgresql-%d-postgis-3", "postgis_raster": "postgresql-%d-postgis-3",
	"postgis_topology": "postgresql-%d-postgis-3", "postgis_tiger_geocoder": "postgresql-%d-postgis-3",
	"pg_partman": "postgresql-%d-partman", "pgaudit": "postgresql-%d-pgaudit", "pg_cron": "postgresql-%d-cron",
	"hypopg": "postgresql-%d-hypopg", "pg_repack": "postgresql-%d-repack", "orafce": "postgresql-%d-orafce",
	"pg_hint_plan": "postgresql-%d-pg-hint-plan", "pgrouting": "postgresql-%d-pgrouting", "h3": "postgresql-%d-h3",
	"timescaledb": "timescaledb-2-postgresql-%d",
}

func missingExtensionSentence(e sourceExtension, major int) string {
	install := fmt.Sprintf("install the package that provides it for PostgreSQL %d (apt-cache search %s)", major, e.name)
	if p, ok := debPackages[e.name]; ok {
		install = "apt-get install " + fmt.Sprintf(p, major)
	}
	return fmt.Sprintf("extension %s %s (schema %s) is used on the source but not installed on this host: %s and sync again, or drop the extension from the source",
		e.name, e.version, e.schema, install)
}

// refuseMissingExtensions stops the run before anything is restored when the
// target cannot create one of the source's extensions.
func (r *run) refuseMissingExtensions(ctx context.Context) error {
	exts, err := sourceExtensions(ctx, r.src)
	if err != nil {
		return err
	}
	rows, err := r.tgtConn.Query(ctx, "SELECT name::text FROM pg_catalog.pg_available_extensions")
	if err != nil {
		return fmt.Errorf("available extensions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("available extensions: %w", err)
	}
	available := map[string]bool{}
	for _, n := range names {
		available[n] = true
	}
	var major int
	if err := r.tgtConn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&major); err != nil {
		return fmt.Errorf("target version: %w", err)
	}
	if missing := missingExtensions(exts, available, major); len(missing) > 0 {
		return fmt.Errorf("%w: %s", errMissingExtension, strings.Join(missing, "; "))
	}
	return nil
}

// hostExtensions lists the extensions the PostgreSQL in binDir can create
// (the control files in its share directory, where the server looks) and
// its major version.
func hostExtensions(ctx context.Context, binDir string) (map[string]bool, int, error) {
	out, err := toolOutput(ctx, filepath.Join(binDir, "pg_config"), []string{"--sharedir", "--version"}, "pg_config")
	if err != nil {
		return nil, 0, err
	}
	share, version, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	var major int
	fmt.Sscanf(version, "PostgreSQL %d", &major)
	files, err := filepath.Glob(filepath.Join(share, "extension", "*.control"))
	if err != nil {
		return nil, 0, err
	}
	m := map[string]bool{}
	for _, f := range files {
		m[strings.TrimSuffix(filepath.Base(f), ".control")] = true
	}
	if len(m) == 0 {
		return nil, 0, fmt.Errorf("no extension control files under %s", share)
	}
	return m, major, nil
}

// extensionWarnings are `mask plan`'s sentences for the source's extensions
// the PostgreSQL in binDir (empty: the one the sync finds) lacks.
func extensionWarnings(ctx context.Context, src *pgx.Conn, binDir string) ([]string, error) {
	if binDir == "" {
		d, err := findBinDir()
		if err != nil {
			return nil, err
		}
		binDir = d
	}
	exts, err := sourceExtensions(ctx, src)
	if err != nil {
		return nil, err
	}
	available, major, err := hostExtensions(ctx, binDir)
	if err != nil {
		return nil, err
	}
	return missingExtensions(exts, available, major), nil
}
