package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// SetReadOnly makes the next start a hot standby that refuses every write;
// a snapshot and clone of it (here a backup-bracketed copy taken while it
// runs) start writable; SetReadOnly(false) makes it writable again.
func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "copy", t.TempDir())
	f.init("ro")
	inst := f.start("ro")
	exec1(t, connect(t, inst), "CREATE TABLE t AS SELECT 1 AS x")
	if err := f.e.SetReadOnly("ro", true); err == nil {
		t.Fatal("SetReadOnly of a running instance succeeded; want it refused")
	}
	if err := f.e.Stop(ctx, "ro"); err != nil {
		t.Fatal(err)
	}
	if err := f.e.SetReadOnly("ro", true); err != nil {
		t.Fatal(err)
	}
	if !f.e.ReadOnly("ro") {
		t.Fatal("ReadOnly false after SetReadOnly(true)")
	}
	c := connect(t, f.start("ro"))
	if n := queryInt(t, c, "SELECT count(*) FROM t"); n != 1 {
		t.Fatalf("rows readable on the standby: %d, want 1", n)
	}
	_, err := c.Exec(ctx, "INSERT INTO t VALUES (2)")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25006" {
		t.Fatalf("write on a read-only instance: %v; want read_only_sql_transaction (25006)", err)
	}

	if err := f.e.Snapshot(ctx, "ro", "snap"); err != nil {
		t.Fatalf("snapshot of a running standby: %v", err)
	}
	if err := f.e.Clone(ctx, "snap", "kid"); err != nil {
		t.Fatal(err)
	}
	if f.e.ReadOnly("kid") {
		t.Fatal("a clone of a read-only volume is read-only; want writable")
	}
	kid := connect(t, f.start("kid"))
	exec1(t, kid, "INSERT INTO t VALUES (2)")
	if n := queryInt(t, kid, "SELECT count(*) FROM t"); n != 2 {
		t.Fatalf("rows in the clone after a write: %d, want 2", n)
	}

	if err := f.e.Stop(ctx, "ro"); err != nil {
		t.Fatal(err)
	}
	if err := f.e.SetReadOnly("ro", false); err != nil {
		t.Fatal(err)
	}
	exec1(t, connect(t, f.start("ro")), "INSERT INTO t VALUES (2)")
}
