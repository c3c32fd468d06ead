package twinsync

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// Logical sync follows sources from PostgreSQL 12. What differs by version:
// pgoutput's protocol (proto_version 2 with streaming and messages from 14;
// proto_version 1 before, so a big transaction arrives whole at its commit
// and progress over unpublished WAL comes from keepalives), and
// pg_replication_slots.wal_status (13+; a 12 slot keeps its WAL forever, so
// it cannot be lost).

// sourceVersion is the source's server_version_num, or the version a test
// makes the follower treat the source as.
func (f *follower) sourceVersion(ctx context.Context, src *pgx.Conn) (int, error) {
	if f.treatAsVersion != 0 {
		return f.treatAsVersion, nil
	}
	v, err := serverMajor(ctx, src)
	if err != nil {
		return 0, redact(err)
	}
	return v, nil
}

// pluginArgs are the START_REPLICATION options for a source of version.
func (f *follower) pluginArgs(version int) pgoutput.PluginArgs {
	return pgoutput.ArgsFor(version, f.Publication)
}

// slotSQL reads a slot's confirmed position, WAL status, lag and retained
// WAL by name ($1); wal_status is NULL before PostgreSQL 13.
func slotSQL(version int) string {
	walStatus := "wal_status"
	if version < 130000 {
		walStatus = "NULL::text"
	}
	return `SELECT confirmed_flush_lsn::text, ` + walStatus + `,
			pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), confirmed_flush_lsn)::int8,
			pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::int8
		FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`
}
