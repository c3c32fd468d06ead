package twinsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// A table's state in pgtwin_sync.relations (state, copied_lsn), like
// pg_subscription_rel's srsubstate and srsublsn. NULL: the table follows
// the progress (pgtwin_sync.progress): the stream's changes of it in
// transactions that commit before it are in the twin, later ones not.
const (
	// tableCopy: to be copied again; the stream drops its changes. The
	// slot is not acked past copied_lsn, so that the stream can be read
	// again from the copy's snapshot on.
	tableCopy = "copy"
	// tableSync: the table's own position is copied_lsn, whatever the
	// progress: its changes in transactions that commit before it are in
	// the twin, later ones not. Behind the progress, the slot is not acked
	// past it; it follows the progress again once the stream reaches it.
	tableSync = "sync"
)

// errCatchUp ends a session so that the next one reads the stream again
// from a table's position behind the progress.
var errCatchUp = errors.New("the stream is read again from the re-copy's snapshot")

// detached is a table that does not follow the progress.
type detached struct {
	relid  uint32
	state  string
	pos    pgoutput.LSN // copied_lsn in memory
	saved  pgoutput.LSN // copied_lsn as committed in the twin
	schema string       // source name when marked
	name   string
	qname  string // twin name
	reason string
	warned string // the key of its warning
}

// warn shows that d is being copied again.
func (s *session) warn(d *detached) {
	d.warned = d.qname
	s.f.setTableWarning(d.qname, fmt.Sprintf("table %s is being copied again from the source (%s); the rest of the twin streams on", d.qname, d.reason))
}

func (s *session) clearWarning(d *detached) {
	if d.warned != "" {
		s.f.setTableWarning(d.warned, "")
	}
	s.f.setTableWarning(d.qname, "")
}

// wanted reports whether a change of table relid in a transaction that
// commits at final is to be applied.
func (s *session) wanted(relid uint32, final pgoutput.LSN) bool {
	if d := s.ddl.det[relid]; d != nil {
		return d.state == tableSync && final >= d.pos
	}
	return final >= s.lastEnd
}

// from is where the stream must start for every table to get what it
// lacks: a transaction that commits before it has nothing to apply.
func (s *session) from() pgoutput.LSN {
	p := s.lastEnd
	for _, d := range s.ddl.det {
		if d.state == tableSync && d.pos < p {
			p = d.pos
		}
	}
	return p
}

// ackCap is how far the slot may be acked: not past a marked table's mark
// (its copy's snapshot starts after it) nor a table's position behind the
// progress (the stream is read again from there). 0: no bound.
func (s *session) ackCap() pgoutput.LSN {
	var p pgoutput.LSN
	for _, d := range s.ddl.det {
		if d.state == tableCopy || d.saved < s.durable {
			if p == 0 || d.saved < p {
				p = d.saved
			}
		}
	}
	return p
}

// catchingUp reports whether a table is behind the progress, its changes
// applied from the stream read again.
func (s *session) catchingUp() bool {
	for _, d := range s.ddl.det {
		if d.state == tableSync && d.saved < s.durable {
			return true
		}
	}
	return false
}

// capAck bounds an acknowledgement by ackCap.
func (s *session) capAck(lsn pgoutput.LSN) pgoutput.LSN {
	if c := s.ackCap(); c != 0 && lsn > c {
		return c
	}
	return lsn
}

// advanceAck acks lsn (bounded), a position below which nothing is
// pending. A bound that forbade it is remembered: once lifted, the ack
// goes on to it.
func (s *session) advanceAck(lsn pgoutput.LSN) {
	s.idleAt = max(s.idleAt, lsn)
	if c := s.capAck(s.idleAt); c > s.acked {
		s.acked = c
	}
	s.f.markApplied(s.complete(), s.acked, 0, 0)
}

// passIdle takes w, a position below which every transaction was received
// and applied as wanted (the stream idles there): a table that caught up
// or whose copy's snapshot lies below follows the progress again.
func (s *session) passIdle(ctx context.Context, w pgoutput.LSN) error {
	caught := false
	if w >= s.lastEnd {
		for _, d := range s.ddl.det {
			if d.state == tableSync && d.pos <= w && d.pos != s.lastEnd {
				d.pos, caught = s.lastEnd, true
			}
		}
	}
	if caught {
		if err := s.openGroup(ctx); err != nil {
			return err
		}
		if err := s.commitGroup(ctx); err != nil {
			return err
		}
	}
	s.advanceAck(w)
	return nil
}

// complete is the position below which the whole twin holds every
// source transaction.
func (s *session) complete() pgoutput.LSN {
	return s.capAck(s.durable)
}

// passTxn moves the tables' own positions past a transaction that ends at
// end, whose changes were applied as wanted.
func (s *session) passTxn(end pgoutput.LSN) {
	s.lastEnd = max(s.lastEnd, end)
	for _, d := range s.ddl.det {
		if d.state == tableSync {
			d.pos = max(d.pos, end)
		}
	}
}

// saveDetached records d's state in the apply's open transaction.
func (s *session) saveDetached(ctx context.Context, d *detached) error {
	// It writes over the apply's connection: a group committing in the
	// background goes first.
	if err := s.settle(ctx); err != nil {
		return err
	}
	if err := saveRelationOn(ctx, s.ap.conn, s.f.Slot, d.relid, s.ddl.maps[d.relid], d.schema, d.name, d.state, d.pos); err != nil {
		return err
	}
	d.saved = d.pos
	return nil
}

// saveTablePositions writes, before the group commits, the positions the
// group moved, and returns the tables that follow the progress again: a
// table whose position is the progress (it reached it, or the stream
// passed its copy's snapshot).
func (s *session) saveTablePositions(ctx context.Context) ([]*detached, error) {
	var back []*detached
	for _, d := range s.ddl.det {
		if d.state != tableSync {
			continue
		}
		if d.pos == s.lastEnd {
			if err := s.ap.exec(ctx, fmt.Sprintf("UPDATE pgtwin_sync.relations SET state = NULL, copied_lsn = NULL WHERE slot = %s AND relid = %d",
				quoteLiteral(s.f.Slot), d.relid)); err != nil {
				return nil, fmt.Errorf("record table %s: %w", d.qname, err)
			}
			back = append(back, d)
			continue
		}
		if d.pos != d.saved {
			if err := s.ap.exec(ctx, fmt.Sprintf("UPDATE pgtwin_sync.relations SET copied_lsn = %s WHERE slot = %s AND relid = %d",
				quoteLiteral(d.pos.String()), quoteLiteral(s.f.Slot), d.relid)); err != nil {
				return nil, fmt.Errorf("record table %s: %w", d.qname, err)
			}
		}
	}
	return back, nil
}

// committedPositions takes what saveTablePositions wrote as committed.
func (s *session) committedPositions(back []*detached) {
	for _, d := range s.ddl.det {
		d.saved = d.pos
	}
	for _, d := range back {
		delete(s.ddl.det, d.relid)
		s.clearWarning(d)
		s.log.Info().Str(logkey.Table, d.qname).Msg("table caught up with the stream after its copy")
	}
}

// copyStep, between transactions: takes a finished copy, starts the next.
func (s *session) copyStep(ctx context.Context) error {
	if s.copying != nil {
		select {
		case res := <-s.copying.done:
			s.copying = nil
			if err := s.copied(ctx, res); err != nil {
				return err
			}
		default:
		}
	}
	s.startCopy(ctx)
	return nil
}

// copied takes a copy the copier committed.
func (s *session) copied(ctx context.Context, res copyResult) error {
	d := s.ddl.det[res.relid]
	if d == nil {
		return fmt.Errorf("re-copy of table %d: the session lost its state", res.relid)
	}
	if res.err != nil {
		return fmt.Errorf("re-copy %s: %w", d.qname, res.err)
	}
	// Statements and checks made for the table as it was.
	for _, rs := range s.versions {
		if rs.rel.RelationID == res.relid {
			delete(s.ddl.checked, rs.ver)
		}
	}
	delete(s.ap.tables, d.qname)
	if res.m == nil {
		s.log.Warn().Str(logkey.Table, d.qname).Msg("table dropped on the source before it could be copied again")
		delete(s.ddl.det, res.relid)
		s.clearWarning(d)
		s.f.setTableWarning(d.qname, fmt.Sprintf("table %s was dropped on the source; the twin keeps its last rows", d.qname))
		return nil
	}
	delete(s.ap.tables, res.m.qname())
	s.ddl.maps[res.relid] = res.m
	d.state, d.pos, d.saved, d.qname = tableSync, res.lsn, res.lsn, res.m.qname()
	s.log.Info().Str(logkey.Table, d.qname).Int64(logkey.Rows, res.rows).Str(logkey.LSN, res.lsn.String()).
		Dur(logkey.Duration, res.took).Msg("table copied again")
	if s.lastEnd > res.lsn {
		// The stream dropped the table's changes of transactions since
		// the snapshot: read it again from there (everything else applied
		// is kept; the table's changes only are applied until the stream
		// reaches where it was).
		if err := s.commitGroup(ctx); err != nil {
			return err
		}
		return fmt.Errorf("re-copy of %s at %s, the stream is at %s: %w", d.qname, res.lsn, s.lastEnd, errCatchUp)
	}
	// The stream has not reached the snapshot: the table's changes from
	// it on come next, and the table is whole meanwhile.
	s.clearWarning(d)
	s.advanceAck(s.acked)
	return nil
}

// loadDetached reads the tables' states (loadRelations' rows).
func (s *session) loadDetached(relid uint32, schema, name, state string, lsn pgoutput.LSN) {
	switch state {
	case tableCopy, tableSync:
	default:
		if lsn <= s.durable {
			return
		}
		// Recorded before states were: a copy whose snapshot the
		// stream has not reached.
		state = tableSync
	}
	d := &detached{relid: relid, state: state, pos: lsn, saved: lsn, schema: schema, name: name,
		qname: pgx.Identifier{schema, name}.Sanitize(), reason: "it was being copied again"}
	s.ddl.det[relid] = d
	if state == tableCopy || lsn < s.durable {
		s.warn(d)
	}
}

// saveRelationOn records table relid over conn, in its open transaction:
// m its columns (nil: none yet), state and lsn its state.
func saveRelationOn(ctx context.Context, conn *pgconn.PgConn, slot string, relid uint32, m *relMap, schema, name, state string, lsn pgoutput.LSN) error {
	cols := "{\"cols\": []}"
	if m != nil {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		cols, schema, name = string(b), m.Schema, m.Name
	}
	st, l := "NULL", "NULL"
	if state != "" {
		st, l = quoteLiteral(state), quoteLiteral(lsn.String())
	}
	sql := fmt.Sprintf(`INSERT INTO pgtwin_sync.relations (slot, relid, nspname, relname, cols, state, copied_lsn) VALUES (%s, %d, %s, %s, %s, %s, %s)
		ON CONFLICT (slot, relid) DO UPDATE SET nspname = excluded.nspname, relname = excluded.relname, cols = excluded.cols, state = excluded.state, copied_lsn = excluded.copied_lsn`,
		quoteLiteral(slot), relid, quoteLiteral(schema), quoteLiteral(name), quoteLiteral(cols), st, l)
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("record relation %s.%s: %w", schema, name, redact(err))
	}
	return nil
}
