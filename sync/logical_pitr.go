package twinsync

import (
	"context"
	"fmt"
	"time"
)

// Exact --at (snapshots.pitr_window): every twin transaction the apply
// commits records the source commit times of the transactions it holds in
// pgtwin_sync.pitr_map, keyed by its own transaction id, which archive
// recovery of main can stop right after. A group never holds transactions
// on both sides of a whole second, so for any TIME to the second the last
// group ending at or before it is exactly "every source transaction
// committed at or before TIME".

const pitrMapDDL = `CREATE TABLE IF NOT EXISTS pgtwin_sync.pitr_map (
	xid xid8 PRIMARY KEY,
	first_commit timestamptz NOT NULL,
	last_commit timestamptz NOT NULL
)`

// pitrTrimEvery is how often the map loses the rows older than the window;
// pitrTrimMargin keeps a little more, as the daemon's clock may not be the
// source's.
const (
	pitrTrimEvery  = time.Minute
	pitrTrimMargin = time.Hour
)

// pitrState is the open group's source commit-time range.
type pitrState struct {
	n           int
	first, last time.Time
	key         time.Time // the whole second at or after every commit time in the group
	trimAt      time.Time
}

// pitrKey is the first whole second at or after t: transactions with the
// same key are on the same side of every whole second.
func pitrKey(t time.Time) time.Time {
	k := t.Truncate(time.Second)
	if k.Before(t) {
		k = k.Add(time.Second)
	}
	return k
}

// pitrSetup makes the map when the window is on.
func (s *session) pitrSetup(ctx context.Context) error {
	if s.f.PITRWindow <= 0 {
		return nil
	}
	s.f.pitr = pitrState{}
	if err := s.ap.exec(ctx, pitrMapDDL); err != nil {
		return fmt.Errorf("make pgtwin_sync.pitr_map: %w", err)
	}
	return nil
}

// pitrBegin is called for each source transaction about to be applied,
// before its group is opened: it commits the open group first when the
// transaction is on the other side of a whole second.
func (s *session) pitrBegin(ctx context.Context, commit time.Time) error {
	if s.f.PITRWindow <= 0 {
		return nil
	}
	p := &s.f.pitr
	if p.n > 0 && s.ap.open && pitrKey(commit) != p.key {
		if err := s.commitGroup(ctx); err != nil {
			return err
		}
	}
	if p.n == 0 {
		p.first, p.last, p.key = commit, commit, pitrKey(commit)
	}
	if commit.After(p.last) {
		p.last = commit
	}
	if commit.Before(p.first) {
		p.first = commit
	}
	p.n++
	return nil
}

// pitrRecord adds the open group's row to its transaction, just before the
// commit, and every pitrTrimEvery drops rows past the window (keeping the
// newest of those: a time early in the window with nothing since needs it).
func (s *session) pitrRecord(ctx context.Context) error {
	p := &s.f.pitr
	if s.f.PITRWindow <= 0 || p.n == 0 || !s.ap.open {
		return nil
	}
	first, last := p.first, p.last
	p.n = 0
	sql := fmt.Sprintf("INSERT INTO pgtwin_sync.pitr_map (xid, first_commit, last_commit) VALUES (pg_catalog.pg_current_xact_id(), '%s', '%s')",
		first.UTC().Format(time.RFC3339Nano), last.UTC().Format(time.RFC3339Nano))
	if err := s.ap.exec(ctx, sql); err != nil {
		return fmt.Errorf("record the group in pgtwin_sync.pitr_map: %w", err)
	}
	if time.Now().Before(p.trimAt) {
		return nil
	}
	p.trimAt = time.Now().Add(pitrTrimEvery)
	cut := first.Add(-s.f.PITRWindow - pitrTrimMargin).UTC().Format(time.RFC3339Nano)
	trim := fmt.Sprintf(`DELETE FROM pgtwin_sync.pitr_map WHERE last_commit < '%[1]s'
		AND xid < (SELECT pg_catalog.max(xid) FROM pgtwin_sync.pitr_map WHERE last_commit < '%[1]s')`, cut)
	if err := s.ap.exec(ctx, trim); err != nil {
		return fmt.Errorf("trim pgtwin_sync.pitr_map: %w", err)
	}
	return nil
}
