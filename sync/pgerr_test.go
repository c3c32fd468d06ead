package twinsync

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// Errors a real server gives are sorted as the sync needs them, also when
// wrapped.
func TestClassifyServerErrors(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t, pgtest.Options{Logical: true})
	conn := pg.Connect(t, "postgres")
	for _, c := range []struct {
		sql  string
		want error
	}{
		{"SELECT pg_catalog.pg_drop_replication_slot('no_such_slot')", errUndefinedObject},
		{"BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", errInvalidParameter},
		{"SELECT 1/0", errSQL},
	} {
		_, err := conn.Exec(ctx, c.sql)
		conn.Exec(ctx, "ROLLBACK")
		if err == nil {
			t.Fatalf("%s: no error", c.sql)
		}
		if got := classify(fmt.Errorf("step: %w", err)); got != c.want {
			t.Errorf("%s: %v classified as %v, want %v", c.sql, err, got, c.want)
		}
	}
	// The server going away mid-session.
	victim := pg.Connect(t, "postgres")
	var pid int
	if err := victim.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	_, err := victim.Exec(ctx, "SELECT 1")
	if err == nil || !retriable(err) {
		t.Errorf("a terminated session's error %v: retriable = false, want true", err)
	}
}

// Codes the tests cannot easily make a server send.
func TestClassifyCodes(t *testing.T) {
	for _, c := range []struct {
		code, msg string
		want      error
	}{
		{"08006", "connection failure", errServerGone},
		{"08001", "could not connect", errServerGone},
		{"57P01", "terminating connection due to administrator command", errServerGone},
		{"57P02", "crash shutdown", errServerGone},
		{"57P03", "the database system is starting up", errServerGone},
		{"53300", "too many connections", errServerGone},
		{"55006", `replication slot "pgtwin" is active for PID 42`, errObjectInUse},
		{"55000", `can no longer get changes from replication slot "pgtwin"`, errSlotInvalidated},
		{"55000", `replication slot "pgtwin" has been invalidated`, errSlotInvalidated},
		{"55000", "object not in prerequisite state", errSQL},
		{"23505", "duplicate key value", errSQL},
	} {
		err := fmt.Errorf("read slot: %w", &pgconn.PgError{Code: c.code, Message: c.msg})
		if got := classify(err); got != c.want {
			t.Errorf("%s %q: classified as %v, want %v", c.code, c.msg, got, c.want)
		}
		if retriable(err) != (c.want == errServerGone) {
			t.Errorf("%s %q: retriable = %v", c.code, c.msg, retriable(err))
		}
	}
	if got := classify(errors.New("plain")); got != nil {
		t.Errorf("a non-server error classified as %v", got)
	}
}
