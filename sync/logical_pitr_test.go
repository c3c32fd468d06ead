package twinsync

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPITRKey(t *testing.T) {
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in, want time.Time
	}{
		{base, base},
		{base.Add(time.Microsecond), base.Add(time.Second)},
		{base.Add(999999 * time.Microsecond), base.Add(time.Second)},
		{base.Add(time.Second), base.Add(time.Second)},
	} {
		if got := pitrKey(c.in); !got.Equal(c.want) {
			t.Errorf("pitrKey(%s) = %s, want %s", c.in.Format(time.RFC3339Nano), got.Format(time.RFC3339Nano), c.want.Format(time.RFC3339Nano))
		}
	}
}

// TestLogicalPITRMap: with PITRWindow set, every twin transaction of the
// apply has its row in pgtwin_sync.pitr_map, no row's source commit times
// straddle a whole second, and rows follow the source's commit order.
func TestLogicalPITRMap(t *testing.T) {
	ctx := context.Background()
	e := newLogicalEnv(t, 0)
	f := e.follower()
	f.PITRWindow = time.Hour
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	waitState(t, f, stateStreaming, 2*time.Minute)

	// Many small transactions over a few whole seconds.
	src, err := pgx.Connect(ctx, e.src.ConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	var commits []time.Time
	for end, i := time.Now().Add(2500*time.Millisecond), 0; time.Now().Before(end); i++ {
		if _, err := src.Exec(ctx, fmt.Sprintf("INSERT INTO parents VALUES (%d, 'p')", 1000+i)); err != nil {
			t.Fatal(err)
		}
		commits = append(commits, time.Now())
		time.Sleep(5 * time.Millisecond)
	}
	e.sync(time.Minute)

	tgt, err := pgx.Connect(ctx, e.tgt.ConnString("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close(ctx)
	rows, err := tgt.Query(ctx, "SELECT first_commit, last_commit FROM pgtwin_sync.pitr_map ORDER BY xid")
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ first, last time.Time }
	var spans []span
	for rows.Next() {
		var s span
		if err := rows.Scan(&s.first, &s.last); err != nil {
			t.Fatal(err)
		}
		spans = append(spans, s)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	seconds := map[int64]bool{}
	for _, c := range commits {
		seconds[c.Unix()] = true
	}
	if len(spans) < len(seconds) {
		t.Fatalf("%d map rows for transactions over %d seconds", len(spans), len(seconds))
	}
	for i, s := range spans {
		if s.last.Before(s.first) || !pitrKey(s.first).Equal(pitrKey(s.last)) {
			t.Fatalf("row %d straddles a second: %s .. %s", i, s.first.Format(time.RFC3339Nano), s.last.Format(time.RFC3339Nano))
		}
		if i > 0 && s.first.Before(spans[i-1].last) {
			t.Fatalf("row %d starts before row %d ends", i, i-1)
		}
	}
	var applied int64
	if err := tgt.QueryRow(ctx, "SELECT count(*) FROM parents WHERE id >= 1000").Scan(&applied); err != nil || applied != int64(len(commits)) {
		t.Fatalf("twin has %d of %d rows (%v)", applied, len(commits), err)
	}
}
