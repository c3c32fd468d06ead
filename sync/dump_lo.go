package twinsync

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// Large objects live outside every table, so no column rule masks them,
// and they can hold anything (scans, contracts, exports). pg_dump
// --schema-only leaves them out; sync.large_objects decides: "skip" (the
// default) copies none, "empty" creates each with its OID and no content so
// oid columns naming them stay valid, "copy" copies them unmasked, a choice
// the config must spell out. They are made by the owner role, in the run's
// snapshot, before any table's rows.

// loChunk is how much of a large object one round trip moves.
const loChunk = 1 << 20

func (r *run) largeObjects(ctx context.Context) error {
	mode := r.d.Selection.LargeObjects
	if mode == "" || mode == "skip" {
		return nil
	}
	if mode != "empty" && mode != "copy" {
		return fmt.Errorf("sync.large_objects %q: use \"skip\", \"empty\" or \"copy\"", mode)
	}
	src, err := r.d.connectSource(ctx)
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	if err := r.coord.importSnapshot(ctx, src); err != nil {
		return fmt.Errorf("large objects: %w", err)
	}
	rows, err := src.Query(ctx, "SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid")
	if err != nil {
		return fmt.Errorf("source large objects: %w", err)
	}
	oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return fmt.Errorf("source large objects: %w", err)
	}
	if len(oids) == 0 {
		return nil
	}
	if _, err := r.tgtConn.Exec(ctx, "SET ROLE "+pgx.Identifier{r.tgt.Owner}.Sanitize()); err != nil {
		return fmt.Errorf("large objects: %w", err)
	}
	defer r.tgtConn.Exec(context.WithoutCancel(ctx), "RESET ROLE")
	if _, err := r.tgtConn.Exec(ctx, "SELECT count(pg_catalog.lo_create(o)) FROM pg_catalog.unnest($1::oid[]) AS o", oids); err != nil {
		return fmt.Errorf("create large objects: %w", err)
	}
	var bytes int64
	if mode == "copy" {
		for _, oid := range oids {
			for off := int64(0); ; off += loChunk {
				var b []byte
				if err := src.QueryRow(ctx, "SELECT pg_catalog.lo_get($1, $2, $3)", oid, off, loChunk).Scan(&b); err != nil {
					return fmt.Errorf("read large object %d: %w", oid, err)
				}
				if len(b) > 0 {
					if _, err := r.tgtConn.Exec(ctx, "SELECT pg_catalog.lo_put($1, $2, $3)", oid, off, b); err != nil {
						return fmt.Errorf("write large object %d: %w", oid, err)
					}
				}
				bytes += int64(len(b))
				if len(b) < loChunk {
					break
				}
			}
		}
	}
	r.log.Info().Int("large_objects", len(oids)).Int64("bytes", bytes).Str(logkey.Mode, mode).Msg("large objects restored")
	return nil
}
