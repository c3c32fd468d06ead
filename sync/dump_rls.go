package twinsync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// FORCE ROW LEVEL SECURITY comes with a table's definition (pre-data),
// ENABLE with post-data, before the foreign keys. A foreign key's check
// query then runs as the owner role, which FORCE subjects to the policies,
// under pg_restore's row_security = off: "query would be affected by
// row-level security policy". Plain pg_restore as a superuser never meets
// it; the owner role must not be one (nor BYPASSRLS: branches would inherit
// the rows it sees). So FORCE is lifted once pre-data is in and set again
// once post-data is done (foreign keys validated, materialized views
// refreshed from every row, as the source's superuser-made data has them).

// forcedFile lists, in the run's temp dir, the OIDs of the tables whose
// FORCE waits for the end of post-data.
const forcedFile = "forced-rls.list"

// liftForcedRowSecurity runs at the end of pre-data.
func (r *run) liftForcedRowSecurity(ctx context.Context) error {
	rows, err := r.tgtConn.Query(ctx, `SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relforcerowsecurity AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY c.oid`)
	if err != nil {
		return fmt.Errorf("forced row security: %w", err)
	}
	type rel struct {
		oid  uint32
		name string
	}
	rels, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rel, error) {
		var t rel
		return t, row.Scan(&t.oid, &t.name)
	})
	if err != nil {
		return fmt.Errorf("forced row security: %w", err)
	}
	var list strings.Builder
	for _, t := range rels {
		if _, err := r.tgtConn.Exec(ctx, "ALTER TABLE "+t.name+" NO FORCE ROW LEVEL SECURITY"); err != nil {
			return fmt.Errorf("lift FORCE ROW LEVEL SECURITY of %s for the restore: %w", t.name, err)
		}
		fmt.Fprintln(&list, t.oid)
	}
	return os.WriteFile(filepath.Join(r.dir, forcedFile), []byte(list.String()), 0o600)
}

// restoreForcedRowSecurity puts FORCE back where the source has it.
func (r *run) restoreForcedRowSecurity(ctx context.Context) error {
	b, err := os.ReadFile(filepath.Join(r.dir, forcedFile))
	if err != nil {
		return fmt.Errorf("forced row security: %w", err)
	}
	for _, f := range strings.Fields(string(b)) {
		oid, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return fmt.Errorf("forced row security: %w", err)
		}
		var name string
		if err := r.tgtConn.QueryRow(ctx, `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, oid).Scan(&name); err != nil {
			return fmt.Errorf("forced row security: table %d: %w", oid, err)
		}
		if _, err := r.tgtConn.Exec(ctx, "ALTER TABLE "+name+" FORCE ROW LEVEL SECURITY"); err != nil {
			return fmt.Errorf("restore FORCE ROW LEVEL SECURITY of %s: %w", name, err)
		}
	}
	return nil
}
