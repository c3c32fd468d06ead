package twinsync

// A session's messages: decoded, their changes routed to the apply (or to a
// streamed transaction's spill), streamed transactions replayed at commit.

import (
	"context"
	"fmt"
	"time"

	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

func (s *session) handle(ctx context.Context, x *pgoutput.XLogData) error {
	msg, err := s.dec.Decode(x.Data)
	if err != nil {
		return err
	}
	switch msg.(type) {
	case *pgoutput.Begin, *pgoutput.Commit, *pgoutput.Insert, *pgoutput.Update, *pgoutput.Delete:
	default:
		// Descriptions, truncates, barriers, streamed transactions: their
		// handling may use the twin's connection or the progress.
		if err := s.settle(ctx); err != nil {
			return err
		}
	}
	switch m := msg.(type) {
	case *pgoutput.Begin:
		s.inTxn = true
		// A transaction whose commit record starts before what the twin
		// holds was applied before a restart: skip it.
		s.skip = m.FinalLSN < s.from()
		s.ddl.final = m.FinalLSN
		if !s.skip {
			// A transaction read again for a table copied again is not
			// a new point in time of the twin.
			if m.FinalLSN >= s.lastEnd {
				if err := s.pitrBegin(ctx, m.CommitTime); err != nil {
					return err
				}
			}
			if s.pending.IsZero() {
				s.pending = m.CommitTime
				if s.inflight == nil {
					s.f.setPending(m.CommitTime)
				}
			}
			return s.openGroup(ctx)
		}
	case *pgoutput.Commit:
		s.inTxn = false
		if !s.skip {
			s.passTxn(m.TransactionEndLSN)
			s.groupTxns++
		}
		s.skip = false
	case *pgoutput.Relation:
		return s.relation(ctx, m)
	case *pgoutput.Insert:
		return s.change(ctx, m.Xid, &change{kind: 'I'}, m.RelationID, nil, m.Tuple, 0)
	case *pgoutput.Update:
		return s.change(ctx, m.Xid, &change{kind: 'U'}, m.RelationID, m.OldTuple, m.NewTuple, m.OldTupleType)
	case *pgoutput.Delete:
		return s.change(ctx, m.Xid, &change{kind: 'D'}, m.RelationID, m.OldTuple, nil, m.OldTupleType)
	case *pgoutput.Truncate:
		c := &change{kind: 'T', xid: m.Xid, truncOpts: m.Options}
		for _, id := range m.RelationIDs {
			rs := s.rels[id]
			if rs == nil {
				return fmt.Errorf("truncate of relation %d before its description", id)
			}
			if !rs.outside {
				c.truncRels = append(c.truncRels, rs.qname)
			}
		}
		if len(c.truncRels) == 0 {
			return nil
		}
		return s.route(ctx, c)
	case *pgoutput.Message:
		if !m.Transactional && !s.inTxn && len(s.streams) == 0 {
			// A barrier outside any transaction: every transaction that
			// committed before it has been sent; once they are durable,
			// so is everything up to it.
			if err := s.commitGroup(ctx); err != nil {
				return err
			}
			if m.LSN > s.acked {
				if err := s.passIdle(ctx, m.LSN); err != nil {
					return err
				}
			}
		}
	case *pgoutput.StreamAbort:
		b := s.streams[m.Xid]
		if b == nil {
			return nil
		}
		if m.SubXid == m.Xid {
			b.close()
			delete(s.streams, m.Xid)
			return nil
		}
		return b.abortSub(m.SubXid)
	case *pgoutput.StreamCommit:
		return s.streamCommit(ctx, m)
	}
	return nil
}

func (s *session) change(ctx context.Context, xid uint32, c *change, relID uint32, oldT, newT pgoutput.Tuple, oldType byte) error {
	if inStream, _ := s.dec.InStream(); !inStream && s.skip {
		return nil
	}
	rs := s.rels[relID]
	if rs == nil {
		return fmt.Errorf("change to relation %d before its description", relID)
	}
	if rs.outside {
		return nil
	}
	if s.inflight != nil && (s.lazy[rs.ver] || !s.ddl.checked[rs.ver]) {
		// Its first change: checking the table may use the twin.
		if err := s.settle(ctx); err != nil {
			return err
		}
	}
	if s.lazy[rs.ver] {
		if in, _ := s.dec.InStream(); !in && !s.wanted(relID, s.ddl.final) {
			return nil
		}
		real, err := s.relState(ctx, rs.rel)
		if err != nil {
			return err
		}
		delete(s.lazy, rs.ver)
		s.rels[relID], s.versions[real.ver] = real, real
		if real.outside {
			return nil
		}
		rs = real
	}
	var err error
	c.rs, c.xid, c.oldType = rs, xid, oldType
	if c.oldT, err = rs.mask(oldT); err != nil {
		return err
	}
	if c.newT, err = rs.mask(newT); err != nil {
		return err
	}
	return s.route(ctx, c)
}

// route applies a change of a whole transaction, or buffers one of a
// streamed transaction until its commit.
func (s *session) route(ctx context.Context, c *change) error {
	if inStream, top := s.dec.InStream(); inStream {
		b := s.streams[top]
		if b == nil {
			b = &streamBuf{xid: top}
			s.streams[top] = b
		}
		if c.xid == 0 {
			c.xid = top
		}
		if err := b.add(c, s.f.SpillDir, s.f.SpillMemory); err != nil {
			return err
		}
		if s.f.fault != nil {
			s.f.fault("stream")
		}
		return nil
	}
	if s.skip {
		return nil
	}
	s.groupRows++
	if s.tm.on {
		if s.tm.changes++; s.tm.first.IsZero() {
			s.tm.first = time.Now()
		}
	}
	return s.applyChange(ctx, c, s.ddl.final)
}

func (s *session) streamCommit(ctx context.Context, m *pgoutput.StreamCommit) error {
	b := s.streams[m.Xid]
	delete(s.streams, m.Xid)
	if b == nil {
		b = &streamBuf{xid: m.Xid}
	}
	defer b.close()
	s.f.mu.Lock()
	s.f.st.Streamed++
	s.f.st.SpilledBytes += b.spilled
	s.f.mu.Unlock()
	if m.CommitLSN < s.from() {
		return nil // applied before a restart
	}
	if m.CommitLSN >= s.lastEnd {
		if err := s.pitrBegin(ctx, m.CommitTime); err != nil {
			return err
		}
	}
	if s.pending.IsZero() {
		s.pending = m.CommitTime
		s.f.setPending(m.CommitTime)
	}
	if err := s.openGroup(ctx); err != nil {
		return err
	}
	// Applying a big transaction can outlast wal_sender_timeout: keep
	// telling the source we are alive (with what is already durable).
	next := time.Now().Add(statusEvery)
	err := b.each(s.versions, func(c *change) error {
		s.groupRows++
		if s.groupRows%1024 == 0 && time.Now().After(next) {
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
			next = time.Now().Add(statusEvery)
		}
		return s.applyChange(ctx, c, m.CommitLSN)
	})
	if err != nil {
		return err
	}
	s.passTxn(m.TransactionEndLSN)
	s.groupTxns++
	return s.commitGroup(ctx)
}
