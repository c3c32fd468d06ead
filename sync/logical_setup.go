package twinsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// errSourceNotReady is returned (wrapped) when the source lacks a setting or
// privilege that logical sync needs; the message says what to change.
var errSourceNotReady = errors.New("the source is not ready for logical sync")

// checkSource checks that the source can feed a logical sync of the
// selected tables: wal_level, the replication privilege (or RDS's
// rds_replication role), and a replica identity for every table, so that
// publishing them never makes an UPDATE or DELETE fail on the source.
func checkSource(ctx context.Context, conn *pgx.Conn, sel selection) error {
	var problems []string
	var walLevel string
	if err := conn.QueryRow(ctx, "SELECT current_setting('wal_level')").Scan(&walLevel); err != nil {
		return fmt.Errorf("check source: %w", redact(err))
	}
	var rdsLogical *string
	_ = conn.QueryRow(ctx, "SELECT current_setting('rds.logical_replication', true)").Scan(&rdsLogical)
	isRDS := rdsLogical != nil && *rdsLogical != ""
	if walLevel != "logical" {
		if isRDS {
			problems = append(problems, fmt.Sprintf("wal_level is %s: set rds.logical_replication = 1 in the instance's parameter group and reboot it", walLevel))
		} else {
			problems = append(problems, fmt.Sprintf("wal_level is %s: set wal_level = logical in postgresql.conf (ALTER SYSTEM SET wal_level = logical) and restart the server", walLevel))
		}
	}
	var user string
	var super, repl, rdsRepl bool
	err := conn.QueryRow(ctx, `SELECT current_user, r.rolsuper, r.rolreplication,
		EXISTS (SELECT 1 FROM pg_catalog.pg_roles g WHERE g.rolname = 'rds_replication' AND pg_catalog.pg_has_role(current_user, g.oid, 'member'))
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(&user, &super, &repl, &rdsRepl)
	if err != nil {
		return fmt.Errorf("check source: %w", redact(err))
	}
	if !super && !repl && !rdsRepl {
		if isRDS {
			problems = append(problems, fmt.Sprintf("role %s may not replicate: GRANT rds_replication TO %s", user, pgx.Identifier{user}.Sanitize()))
		} else {
			problems = append(problems, fmt.Sprintf("role %s may not replicate: ALTER ROLE %s REPLICATION", user, pgx.Identifier{user}.Sanitize()))
		}
	}
	tables, err := sourceTables(ctx, conn, sel)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t.identity == "n" || t.identity == "d" && !t.hasPK {
			problems = append(problems, fmt.Sprintf("table %s has no primary key and REPLICA IDENTITY %s, so UPDATE and DELETE on it would fail once published: add a primary key, or run ALTER TABLE %s REPLICA IDENTITY FULL",
				t.qname(), map[string]string{"n": "NOTHING", "d": "DEFAULT"}[t.identity], t.qname()))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w:\n  %s", errSourceNotReady, strings.Join(problems, "\n  "))
	}
	return nil
}

type sourceTable struct {
	schema, name string
	identity     string // pg_class.relreplident
	hasPK        bool
}

func (t sourceTable) qname() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// sourceTables lists the selected leaf tables, as the dump copy does.
func sourceTables(ctx context.Context, conn *pgx.Conn, sel selection) ([]sourceTable, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname, c.relreplident::text,
			EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence = 'p'
			AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
				AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list source tables: %w", redact(err))
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sourceTable, error) {
		var t sourceTable
		return t, row.Scan(&t.schema, &t.name, &t.identity, &t.hasPK)
	})
	if err != nil {
		return nil, fmt.Errorf("list source tables: %w", redact(err))
	}
	var out []sourceTable
	for _, t := range all {
		if sel.Includes(t.schema, t.name) {
			out = append(out, t)
		}
	}
	return out, nil
}

// ensurePublication makes the publication list exactly the selected tables.
func (f *follower) ensurePublication(ctx context.Context, conn *pgx.Conn) error {
	tables, err := sourceTables(ctx, conn, f.Selection)
	if err != nil {
		return err
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		// ONLY: an inheritance parent must not drag in excluded children.
		names[i] = "ONLY " + t.qname()
	}
	pub := pgx.Identifier{f.Publication}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)", f.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("publication %s: %w", f.Publication, redact(err))
	}
	var sql string
	switch {
	case !exists && len(names) == 0:
		sql = "CREATE PUBLICATION " + pub
	case !exists:
		sql = "CREATE PUBLICATION " + pub + " FOR TABLE " + strings.Join(names, ", ")
	case len(names) == 0:
		// SET TABLE needs at least one; drop and make an empty one.
		sql = "DROP PUBLICATION " + pub + "; CREATE PUBLICATION " + pub
	default:
		sql = "ALTER PUBLICATION " + pub + " SET TABLE " + strings.Join(names, ", ")
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("publication %s: %w", f.Publication, redact(err))
	}
	return nil
}

// dropSlot drops the slot if it exists, waiting for a walsender still using
// it to let go.
func (f *follower) dropSlotSQL(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots
		WHERE slot_name = $1 AND database = current_database()`, f.Slot)
	if err != nil {
		if classify(err) == errObjectInUse {
			_, err = conn.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(active_pid) FROM pg_catalog.pg_replication_slots
				WHERE slot_name = $1 AND active_pid IS NOT NULL`, f.Slot)
			if err == nil {
				_, err = conn.Exec(ctx, `SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots
					WHERE slot_name = $1`, f.Slot)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("drop slot %s: %w", f.Slot, redact(err))
	}
	return nil
}

// DropSlot drops the follower's slot on the source (`sync stop
// --drop-slot`), so the source stops keeping WAL for it. Stop first.
func (f *follower) DropSlot(ctx context.Context) error {
	f.defaults()
	conn, err := f.dumper().connectSource(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return f.dropSlotSQL(ctx, conn)
}

func (f *follower) dumper() *dumper {
	return &dumper{Source: f.Source, Parallel: f.Parallel, Selection: f.Selection, Plan: f.Plan,
		Backoff: f.Backoff, Log: f.Log, TempDir: f.TempDir}
}
