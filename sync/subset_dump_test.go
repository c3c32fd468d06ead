package twinsync

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// Through the dump run: the twin holds exactly the closure, masked, with
// every foreign key restored (post-data would fail on a dangling one) and
// the unrelated table whole; a new filter gives the new subset; mask plan
// shows the subset per table.
func testSubsetDumpRun(t *testing.T, src *pgtest.Cluster, check *pgx.Conn) {
	ctx := context.Background()
	tc, _ := newTarget(t)
	log, logs := testLogger(t)

	for i, filter := range []string{"created_at > '2026-02-10 00:00+00'", "created_at > '2026-02-05 00:00+00' AND id % 3 = 0"} {
		db := fmt.Sprintf("twin%d", i)
		tc.Exec(t, "postgres", "CREATE DATABASE "+db+" OWNER pgtwin_owner")
		d := &dumper{
			Source:    source{URL: src.ConnString("app")},
			Parallel:  2,
			Selection: selection{Subset: subsetSpecOf(t, filter, subsetSkip...)},
			Plan:      plan(hashMasker{"public.customers": {"email", "full_name"}, "public.payments": {"card_number"}}),
			Backoff:   backoff{Initial: 10 * time.Millisecond, Attempts: 2},
			Log:       log,
		}
		var p progress
		if err := d.Run(ctx, target{ConnString: tc.ConnString(db), BinDir: tc.Bin}, &p); err != nil {
			t.Fatalf("Run: %v\nlog:\n%s", err, logs)
		}
		if st := p.Stats(); st.TablesDone != 11 || st.TablesTotal != 11 {
			t.Errorf("progress %d/%d tables, want 11/11", st.TablesDone, st.TablesTotal)
		}
		twin := tc.Connect(t, db)
		got := map[string]map[string]bool{}
		for tb, expr := range subsetKeyOf {
			rows, err := twin.Query(ctx, "SELECT "+expr+" FROM "+tb)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			got[tb] = map[string]bool{}
			for _, k := range keys {
				got[tb][k] = true
			}
		}
		diffKeys(t, filter, got, expectedSubset(t, check, filter, skipSet(subsetSkip)))
		var fks, settings, plain int
		if err := twin.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated),
			(SELECT count(*) FROM settings),
			(SELECT count(*) FROM customers WHERE email LIKE '%@example.com')`).Scan(&fks, &settings, &plain); err != nil {
			t.Fatal(err)
		}
		if fks != 10 || settings != 5 || plain != 0 {
			t.Errorf("twin: %d foreign keys (want 10), %d settings (want 5: whole), %d unmasked emails", fks, settings, plain)
		}
	}

	pl, err := maskPlan(ctx, source{URL: src.ConnString("app")}, selection{Subset: subsetSpecOf(t, "created_at > '2026-02-10 00:00+00'", subsetSkip...)},
		nil, "mask", backoff{}, log)
	if err != nil {
		t.Fatalf("maskPlan: %v", err)
	}
	text := strings.Join(pl.Warnings, "\n")
	if !strings.Contains(text, "subset: public.orders: 55 rows of about 1000 (root: ") || !strings.Contains(text, "subset: public.settings: copied whole") {
		t.Errorf("mask plan warnings lack the subset:\n%s", text)
	}
}
