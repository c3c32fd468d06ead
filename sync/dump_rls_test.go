package twinsync

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestForcedRowSecurityLiftedForForeignKeys makes the post-data failure of
// issue 13 happen on purpose, without depending on pg_restore's order: a
// foreign key added by the owner role, under pg_restore's row_security =
// off, to a table whose FORCE subjects the owner to a policy. It fails
// while FORCE is on, works once liftForcedRowSecurity has run, and
// restoreForcedRowSecurity puts FORCE back on exactly the tables that had it.
func TestForcedRowSecurityLiftedForForeignKeys(t *testing.T) {
	ctx := context.Background()
	tc, _ := newTarget(t)
	tc.Exec(t, "app", `SET ROLE pgtwin_owner;
		CREATE TABLE authors (id int PRIMARY KEY, name text);
		CREATE TABLE notes (id int PRIMARY KEY, author int, body text);
		CREATE TABLE plain (id int PRIMARY KEY);
		INSERT INTO authors VALUES (1, 'a'), (2, 'b');
		INSERT INTO notes VALUES (10, 1, 'x'), (11, 2, 'y');
		CREATE POLICY mine ON notes USING (author = 1);
		CREATE POLICY mine ON authors USING (id = 1);
		ALTER TABLE notes ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
		ALTER TABLE authors ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY`)
	conn := tc.Connect(t, "app")
	addFK := func() error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		for _, s := range []string{"SET LOCAL ROLE pgtwin_owner", "SET LOCAL row_security = off",
			"ALTER TABLE notes ADD CONSTRAINT notes_author_fkey FOREIGN KEY (author) REFERENCES authors (id)"} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	}
	err := addFK()
	if err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Fatalf("foreign key under FORCE: err = %v, want the row-level security refusal pg_restore meets", err)
	}

	r := &run{tgtConn: conn, dir: t.TempDir()}
	if err := r.liftForcedRowSecurity(ctx); err != nil {
		t.Fatalf("lift: %v", err)
	}
	if err := addFK(); err != nil {
		t.Fatalf("foreign key with FORCE lifted: %v", err)
	}
	if err := r.restoreForcedRowSecurity(ctx); err != nil {
		t.Fatalf("restore: %v", err)
	}
	rows, err := conn.Query(ctx, `SELECT relname || '=' || relforcerowsecurity FROM pg_class
		WHERE relname IN ('authors', 'notes', 'plain') ORDER BY relname`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := "authors=true notes=true plain=false"; strings.Join(got, " ") != want {
		t.Fatalf("FORCE after restore: %v, want %s", got, want)
	}
	var fks int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_constraint WHERE conname = 'notes_author_fkey' AND convalidated").Scan(&fks); err != nil || fks != 1 {
		t.Fatalf("validated foreign key: %d, %v", fks, err)
	}
}
