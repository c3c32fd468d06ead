package twinsync

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// TestDumpSyncLargeObjects: sync.large_objects skip (default) copies none,
// empty keeps the OIDs with no content, copy copies them byte for byte (one
// larger than a round trip's chunk); mask plan says which.
func TestDumpSyncLargeObjects(t *testing.T) {
	ctx := context.Background()
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}})
	src.Exec(t, "app", `CREATE TABLE files (id int PRIMARY KEY, content oid);
		INSERT INTO files VALUES (1, lo_from_bytea(0, convert_to('signed by Ada Lovelace', 'UTF8'))),
			(2, lo_from_bytea(0, (SELECT string_agg(sha512(int4send(i)), ''::bytea) FROM generate_series(1, 40000) i)))`)
	tc, _ := newTarget(t)
	const sums = "SELECT coalesce(string_agg(m.oid::text || ':' || md5(lo_get(m.oid)), ',' ORDER BY m.oid), '') FROM pg_largeobject_metadata m"
	for _, c := range []struct{ mode, want string }{
		{"", ""},
		{"empty", "empty"},
		{"copy", query[string](t, src, sums)},
	} {
		db := "lo_" + c.mode
		tc.Exec(t, "postgres", "CREATE DATABASE "+db+" OWNER pgtwin_owner")
		d := &dumper{Source: source{URL: src.ConnString("app")}, Plan: plan(hashMasker{}), Selection: selection{LargeObjects: c.mode}}
		if err := d.Run(ctx, target{ConnString: tc.ConnString(db), BinDir: tc.Bin}, nil); err != nil {
			t.Fatalf("large_objects %q: Run: %v", c.mode, err)
		}
		conn := tc.Connect(t, db)
		var got string
		if err := conn.QueryRow(ctx, sums).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if c.want == "empty" {
			var n int64
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_largeobject_metadata m JOIN files f ON f.content = m.oid
				WHERE length(lo_get(m.oid)) = 0 AND pg_get_userbyid(m.lomowner) = 'pgtwin_owner'`).Scan(&n); err != nil || n != 2 {
				t.Errorf("large_objects empty: %d empty large objects owned by pgtwin_owner at the files' OIDs (%v), want 2", n, err)
			}
			continue
		}
		if got != c.want {
			t.Errorf("large_objects %q: the twin's large objects are %q, want %q", c.mode, got, c.want)
		}
	}

	// mask plan's line, per mode.
	conn, err := pgx.Connect(ctx, src.ConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for mode, want := range map[string]string{
		"":      `2 large objects not copied: they can hold PII and no rule masks them, so oid columns naming them point nowhere in the twin (sync.large_objects = "skip"`,
		"empty": `2 large objects: created empty with their OIDs, no content copied`,
		"copy":  `2 large objects: copied UNMASKED, as sync.large_objects = "copy" asks`,
	} {
		notes, err := sourceNotes(ctx, conn, "", mode)
		if err != nil || len(notes) == 0 || !strings.HasPrefix(notes[0], want) {
			t.Errorf("plan notes with large_objects %q = %q, %v; want one starting %q", mode, notes, err, want)
		}
	}
}
