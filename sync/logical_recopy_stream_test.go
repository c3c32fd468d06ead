package twinsync

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A table copied again does not hold up the others: while its copy waits
// (on a lock a session holds on the twin's table, so the copy is as slow
// as the test wants), other tables' changes reach the twin and sync status
// shows the table being copied; the table's own changes made meanwhile
// come from the stream read again from the copy's snapshot, and in the end
// the twin equals the masked source.
func TestLogicalRecopyWhileStreaming(t *testing.T) {
	ctx := context.Background()
	e := newLogicalEnv(t, 200)
	f := e.follower()
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { f.Stop() }()
	waitState(t, f, stateStreaming, 2*time.Minute)

	lock := e.tgt.Connect(t, "app")
	if _, err := lock.Exec(ctx, "BEGIN; SELECT count(*) FROM customers"); err != nil {
		t.Fatal(err)
	}
	e.src.Exec(t, "app", `ALTER TABLE customers ADD COLUMN added_at timestamptz DEFAULT clock_timestamp();
		UPDATE customers SET mood = 'meh' WHERE id <= 3;`)
	tc := e.tgt.Connect(t, "app")
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting bool
		if err := tc.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgtwin copy' AND wait_event_type = 'Lock')").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy of customers never waited on the twin's lock (status %+v)", f.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w := strings.Join(f.Status().Warnings, "\n"); !strings.Contains(w, `table "public"."customers" is being copied again`) {
		t.Errorf("sync status does not show the table being copied: %q", w)
	}
	// Others stream on, the copied table's changes wait for the stream to
	// be read again.
	for i := range 5 {
		e.src.Exec(t, "app", fmt.Sprintf(`INSERT INTO parents VALUES (%d, 'during the copy');
			UPDATE customers SET full_name = 'During %d' WHERE id = %d;
			INSERT INTO customers (email, full_name) VALUES ('new%d@example.com', 'New %d')`, 700+i, i, 10+i, i, i))
	}
	deadline = time.Now().Add(time.Minute)
	for query[int64](t, e.tgt, "SELECT count(*) FROM parents WHERE id >= 700") < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("other tables did not stream while a table was copied again (status %+v)", f.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var still bool
	if err := tc.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgtwin copy' AND wait_event_type = 'Lock')").Scan(&still); err != nil {
		t.Fatal(err)
	}
	if !still {
		t.Fatal("the copy finished before the other tables' rows arrived: the test shows nothing")
	}
	if _, err := lock.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	e.sync(time.Minute)
	e.equal()
	if st := f.Status(); st.State != stateStreaming || len(st.Warnings) != 0 {
		t.Errorf("status %s, warnings %q; want streaming without warnings", st.State, st.Warnings)
	}
	if !strings.Contains(e.logs.String(), "reading the stream again from a re-copy's snapshot") {
		t.Error("the stream was not read again from the copy's snapshot: the table's changes during the copy are not tested")
	}
	// And it goes on as a table like the others.
	e.src.Exec(t, "app", `UPDATE customers SET full_name = 'After' WHERE id <= 20; DELETE FROM parents WHERE id = 700`)
	e.sync(time.Minute)
	e.equal()
}
