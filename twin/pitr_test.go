package twin

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// TestPickMainAt: the base for an exact --at is the newest snapshot of
// main's cluster that holds no sync transaction after the target (then the
// snapshot is that moment, no recovery) or none from the target on (then
// it is recovered to the target); anything else falls back to the newest
// snapshot not newer than the time.
func TestPickMainAt(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	snap := func(id string, at time.Duration, b *pitrBase) *snapshotRecord {
		return &snapshotRecord{ID: id, Origin: MainName, State: stateReady, CreatedAt: t0.Add(at), PITR: b}
	}
	tw := &Twin{log: zerolog.Nop(), snaps: map[string]*snapshotRecord{}}
	for _, s := range []*snapshotRecord{
		snap("plain", 0, nil),
		snap("old", time.Minute, &pitrBase{SystemID: 7, Before: 10, After: 10}),
		snap("mid", 2*time.Minute, &pitrBase{SystemID: 7, Before: 20, After: 20}),
		snap("busy", 3*time.Minute, &pitrBase{SystemID: 7, Before: 30, After: 33}),
		snap("other", 4*time.Minute, &pitrBase{SystemID: 8, Before: 1, After: 1}),
	} {
		tw.snaps[s.ID] = s
	}
	at := t0.Add(10 * time.Minute)
	for _, c := range []struct {
		name       string
		plan       *pitrPlan
		snap       string
		exact      bool
		recoverXID uint64
	}{
		{"recover from the newest base before the target", &pitrPlan{sysID: 7, target: 40, next: 41}, "busy", true, 40},
		{"a base that may hold the target is passed over", &pitrPlan{sysID: 7, target: 31, next: 32}, "mid", true, 31},
		{"a base that is the moment needs no recovery", &pitrPlan{sysID: 7, target: 20, next: 25}, "mid", true, 0},
		{"a base with later transactions than the target is no base", &pitrPlan{sysID: 7, target: 15, next: 16}, "old", true, 15},
		{"no base before the target: a snapshot stands in", &pitrPlan{sysID: 7, target: 5, next: 6}, "other", false, 0},
		{"another cluster's bases do not count", &pitrPlan{sysID: 9, target: 40}, "other", false, 0},
		{"no plan: the newest snapshot not newer than at", nil, "other", false, 0},
	} {
		s, tgt, err := tw.pickMainAt(at, true, c.plan)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.ID != c.snap || (tgt != nil) != c.exact || tgt != nil && tgt.XID != c.recoverXID {
			t.Errorf("%s: got %s %+v, want %s exact=%v xid %d", c.name, s.ID, tgt, c.snap, c.exact, c.recoverXID)
		}
	}
}

// TestMapAround: the map is read in transaction order, not in the text
// order of xids (999 sorts after 1000 as text), against a real server.
func TestMapAround(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	c.Exec(t, "postgres", `CREATE SCHEMA pgtwin_sync;
		CREATE TABLE pgtwin_sync.pitr_map (xid xid8 PRIMARY KEY, first_commit timestamptz NOT NULL, last_commit timestamptz NOT NULL);
		INSERT INTO pgtwin_sync.pitr_map VALUES
			('998', '2026-12-01 09:00:00.1Z', '2026-12-01 09:00:00.2Z'),
			('999', '2026-12-01 09:00:00.3Z', '2026-12-01 09:00:00.9Z'),
			('1000', '2026-12-01 09:00:01Z', '2026-12-01 09:00:01Z'),
			('1001', '2026-12-01 09:00:01.5Z', '2026-12-01 09:00:01.7Z')`)
	conn := c.Connect(t, "postgres")
	ctx := context.Background()
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at           time.Time
		target, next uint64
	}{
		{base, 0, 998},
		{base.Add(time.Second), 1000, 1001},
		{base.Add(2 * time.Second), 1001, 0},
	} {
		target, next, err := mapAround(ctx, conn, tc.at)
		if err != nil || target != tc.target || next != tc.next {
			t.Errorf("at %s: target %d next %d (%v), want %d %d", tc.at.Format(time.RFC3339), target, next, err, tc.target, tc.next)
		}
	}
}
