package twinsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// Grouping of source transactions into one target transaction: commit when
// nothing more is waiting, or the group is this big or this old.
const (
	groupRows    = 20000
	groupAge     = 25 * time.Millisecond
	groupIdle    = 2 * time.Millisecond
	pollInterval = 200 * time.Millisecond
	statusEvery  = 10 * time.Second
)

// errRetryLater ends a session that cannot go on yet but will once the
// source moves on.
var errRetryLater = errors.New("retry later")

// follow fills main when it was never filled, then streams, reconnecting
// after connection faults on either side, until ctx ends or a fault needs
// a person.
func (f *follower) follow(ctx context.Context) error {
	log := f.logger()
	if f.SpillDir != "" {
		if err := os.MkdirAll(f.SpillDir, 0o700); err != nil {
			return fmt.Errorf("spill directory: %w", err)
		}
	}
	removeSpills(f.SpillDir)
	filled, err := f.twinFilled(ctx)
	if err != nil {
		return err
	}
	if !filled {
		if f.Rebuild == nil {
			return fmt.Errorf("main was never filled by logical sync: %w", errNeedsResync)
		}
		if err := f.rebuild(ctx); err != nil {
			return err
		}
	}
	// The slot exists now. Its lag and retained WAL are read from the source
	// for as long as the follower lives (ctx is the worker's), not only while
	// this loop streams: a twin that stopped on a fault must show the source
	// running away from it.
	go f.monitor(ctx)

	b := f.Backoff.orDefault()
	wait := b.Initial
	for {
		started := time.Now()
		err := f.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errCatchUp) {
			log.Info().Err(err).Msg("reading the stream again from a re-copy's snapshot")
			continue
		}
		if !retriable(err) && !errors.Is(err, errRetryLater) {
			return err
		}
		if time.Since(started) > time.Minute {
			wait = b.Initial
		}
		f.setErr(err)
		log.Warn().Err(err).Dur(logkey.Duration, wait).Msg("logical sync interrupted, reconnecting")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, b.Max)
	}
}

// twinFilled reports whether main holds this slot's progress.
func (f *follower) twinFilled(ctx context.Context) (bool, error) {
	var filled bool
	err := f.Backoff.retry(ctx, f.logger(), "connect to the twin", func() error {
		cs, err := f.TargetConn(ctx)
		if err != nil {
			return err
		}
		conn, err := pgx.Connect(ctx, cs)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, filled, err = readProgress(ctx, conn, f.Slot)
		return err
	})
	return filled, err
}

// rebuild replaces main with a fresh initial copy.
func (f *follower) rebuild(ctx context.Context) error {
	f.setState(stateInitializing, "")
	p := &progress{}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				st := p.Stats()
				f.mu.Lock()
				f.st.Step, f.st.Copy = st.Step, &st
				f.mu.Unlock()
			}
		}
	}()
	err := f.Rebuild(ctx, func(ctx context.Context, tgt target) error { return f.Fill(ctx, tgt, p) })
	f.mu.Lock()
	f.st.Step, f.st.Copy = "", nil
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("initial copy: %w", err)
	}
	return nil
}

// Resync starts over: stops following, drops the slot, rebuilds main
// through Rebuild with a new initial copy, and follows again.
func (f *follower) Resync(ctx context.Context) error {
	f.beginResync()
	return f.resync(ctx)
}

// beginResync stops following and marks the resync begun, so that a status
// read right after the request already says so.
func (f *follower) beginResync() {
	f.Stop()
	f.setState(stateInitializing, "")
}

// resync is Resync after beginResync.
func (f *follower) resync(ctx context.Context) error {
	err := errors.New("resync: no way to rebuild main")
	if f.Rebuild != nil {
		err = f.DropSlot(ctx)
	}
	if err == nil {
		err = f.rebuild(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			f.setState(stateStopped, "")
		} else {
			f.setState(stateFailed, err.Error())
		}
		return err
	}
	return f.Start(ctx)
}

// session is one replication connection's life.
type session struct {
	f      *follower
	log    zerolog.Logger
	repl   *pgoutput.Conn
	src    *pgx.Conn
	ap     *applier
	masker masker

	dec      pgoutput.Decoder
	relset   *pgoutput.RelationSet
	rels     map[uint32]*relState
	versions map[uint64]*relState
	nextVer  uint64
	ddl      *ddlState
	// blocked are the tables the masking plan leaves out for unclassified
	// PII (blockedErr says which columns and the rules to add).
	blocked    map[string]blockedTable
	blockedErr error
	// lazy are relation versions received in transactions the twin has
	// (read again for a table copied again): their masking is worked out
	// at their first change the twin lacks, if any.
	lazy    map[uint64]bool
	copying *copyJob // the table being copied again, if any
	idleAt  pgoutput.LSN

	durable   pgoutput.LSN // end of the last transaction committed in the twin
	acked     pgoutput.LSN // what the source was told (durable, or an idle WAL end)
	lastEnd   pgoutput.LSN // end of the last transaction applied or queued
	inTxn     bool
	skip      bool
	streams   map[uint32]*streamBuf
	groupTxns int64
	groupRows int64
	groupAt   time.Time
	seqAt     time.Time
	walEnd    pgoutput.LSN
	pending   time.Time // source commit time of the oldest transaction not yet durable
}

func (f *follower) session(ctx context.Context) (err error) {
	s := &session{f: f, log: f.logger(), relset: pgoutput.NewRelationSet(), rels: map[uint32]*relState{},
		versions: map[uint64]*relState{}, streams: map[uint32]*streamBuf{}, seqAt: time.Now(), lazy: map[uint64]bool{}}
	defer s.close()

	cs, err := f.TargetConn(ctx)
	if err != nil {
		return err
	}
	tcfg, err := targetConfig(cs)
	if err != nil {
		return err
	}
	tconn, err := pgconn.ConnectConfig(ctx, tcfg)
	if err != nil {
		return fmt.Errorf("connect to the twin: %w", err)
	}
	s.ap = newApplier(tconn, s.log)
	res, err := tconn.Exec(ctx, "SELECT lsn::text FROM pgtwin_sync.progress WHERE slot = "+quoteLiteral(f.Slot)).ReadAll()
	if err != nil {
		return fmt.Errorf("read progress: %w", redact(err))
	}
	if len(res[0].Rows) != 1 {
		return fmt.Errorf("the twin has no progress for slot %s: %w", f.Slot, errNeedsResync)
	}
	if s.durable, err = pgoutput.ParseLSN(string(res[0].Rows[0][0])); err != nil {
		return err
	}
	s.acked, s.lastEnd = s.durable, s.durable
	if err := s.pitrSetup(ctx); err != nil {
		return err
	}

	scfg, err := f.Source.connConfig()
	if err != nil {
		return err
	}
	if s.src, err = pgx.ConnectConfig(ctx, scfg); err != nil {
		return fmt.Errorf("connect to source: %w", err)
	}
	version, err := f.sourceVersion(ctx, s.src)
	if err != nil {
		return err
	}
	if err := f.checkSlot(ctx, s.src, version); err != nil {
		return err
	}
	// The twin's record of its tables first: the plan tells the tables it
	// blocks that the twin has from those it does not.
	if err := s.loadRelations(ctx, version); err != nil {
		return err
	}
	// Tables copied again may need the stream from before the progress,
	// and bound the acknowledgements.
	s.acked = s.complete()
	f.markApplied(s.complete(), 0, 0, 0)
	if s.masker, err = s.takePlan(f.Plan(ctx, s.src)); err != nil {
		return fmt.Errorf("masking plan: %w", err)
	}
	if s.repl, err = pgoutput.ConnectConfig(ctx, &scfg.Config); err != nil {
		return fmt.Errorf("source replication connection: %w", err)
	}
	args := f.pluginArgs(version)
	if err = s.repl.StartReplication(ctx, f.Slot, s.from(), args); err != nil {
		return slotError(f.Slot, err)
	}
	f.setState(stateStreaming, "")
	s.log.Info().Str(logkey.Slot, f.Slot).Str(logkey.LSN, s.from().String()).Int(logkey.SourceVersion, version).
		Int(logkey.ProtoVersion, args.ProtoVersion).Msg("streaming from the source")
	return s.loop(ctx)
}

// slotError turns a lost or missing slot into ErrNeedsResync.
func slotError(slot string, err error) error {
	var pgErr *pgconn.PgError
	errors.As(err, &pgErr)
	switch classify(err) {
	case errObjectInUse:
		// Still held by the walsender of a connection that just died.
		return fmt.Errorf("replication slot %s is in use (%s): %w", slot, pgErr.Message, errRetryLater)
	case errUndefinedObject, errSlotInvalidated:
		return fmt.Errorf("replication slot %s is missing or lost its WAL on the source (%s): %w", slot, pgErr.Message, errNeedsResync)
	}
	return redact(err)
}

func (s *session) close() {
	s.stopCopy()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, b := range s.streams {
		b.close()
	}
	if s.ap != nil {
		s.ap.rollback(ctx)
		s.ap.conn.Close(ctx)
	}
	if s.repl != nil {
		s.repl.Close(ctx)
	}
	if s.src != nil {
		s.src.Close(ctx)
	}
}

func (s *session) idle() bool {
	return !s.inTxn && !s.ap.open && len(s.streams) == 0
}

func (s *session) sendStatus(ctx context.Context) error {
	return s.repl.SendStandbyStatus(ctx, pgoutput.StandbyStatus{Write: s.acked, Flush: s.acked, Apply: s.acked})
}

func (s *session) loop(ctx context.Context) error {
	nextStatus := time.Now().Add(statusEvery)
	for {
		if !s.inTxn {
			if err := s.boundary(ctx); err != nil {
				return err
			}
		}
		deadline := time.Now().Add(pollInterval)
		if s.ap.open && !s.inTxn {
			deadline = time.Now().Add(groupIdle)
		}
		deadline = minTime(deadline, nextStatus)
		rctx, cancel := context.WithDeadline(ctx, deadline)
		msg, err := s.repl.ReceiveMessage(rctx)
		cancel()
		if err != nil && pgoutput.Timeout(err) && ctx.Err() == nil {
			if s.ap.open && !s.inTxn {
				if err := s.commitGroup(ctx); err != nil {
					return err
				}
			}
			if !time.Now().Before(nextStatus) {
				if err := s.sendStatus(ctx); err != nil {
					return err
				}
				nextStatus = time.Now().Add(statusEvery)
			}
			continue
		}
		if err != nil {
			return slotError(s.f.Slot, err)
		}
		switch m := msg.(type) {
		case *pgoutput.PrimaryKeepalive:
			s.walEnd = max(s.walEnd, m.ServerWALEnd)
			if s.idle() && m.ServerWALEnd > s.acked {
				// Nothing published is pending below the server's sent
				// position: let the slot advance while our tables are idle.
				before := s.acked
				if err := s.passIdle(ctx, m.ServerWALEnd); err != nil {
					return err
				}
				if s.acked > before {
					m.ReplyRequested = true // tell the server now, not at the next status
				}
			}
			if m.ReplyRequested {
				if err := s.sendStatus(ctx); err != nil {
					return err
				}
				nextStatus = time.Now().Add(statusEvery)
			}
		case *pgoutput.XLogData:
			s.walEnd = max(s.walEnd, m.ServerWALEnd)
			if err := s.handle(ctx, m); err != nil {
				return err
			}
		}
		if time.Now().After(nextStatus) {
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
			nextStatus = time.Now().Add(statusEvery)
		}
	}
}

// boundary runs between source transactions: commit a big or old group,
// serve a snapshot request, copy sequences when due.
func (s *session) boundary(ctx context.Context) error {
	if s.ap.open && (s.groupRows >= groupRows || time.Since(s.groupAt) >= groupAge) {
		if err := s.commitGroup(ctx); err != nil {
			return err
		}
	}
	if err := s.copyStep(ctx); err != nil {
		return err
	}
	// A snapshot waits while a table is copied again or catches up: the
	// twin is not whole meanwhile.
	if s.ackCap() == 0 {
		select {
		case req := <-s.f.pause:
			return s.servePause(ctx, req)
		default:
		}
	}
	if time.Since(s.seqAt) >= s.f.SequenceInterval && !s.ap.open {
		if err := s.syncSequences(ctx); err != nil {
			return err
		}
	}
	return s.followNewTables(ctx)
}

func (s *session) commitGroup(ctx context.Context) error {
	if !s.ap.open {
		return nil
	}
	if err := s.pitrRecord(ctx); err != nil {
		return err
	}
	catching := s.catchingUp()
	back, err := s.saveTablePositions(ctx)
	if err != nil {
		return err
	}
	if err := s.ap.commit(ctx, s.f.Slot, s.lastEnd); err != nil {
		return err
	}
	if s.f.fault != nil {
		s.f.fault("commit")
	}
	s.durable = s.lastEnd
	s.ddl.marked = false
	s.committedPositions(back)
	if s.f.fault != nil && catching {
		s.f.fault("catchup") // committed a table's changes read again
	}
	s.acked = max(s.acked, s.capAck(max(s.durable, s.idleAt)))
	s.f.markApplied(s.complete(), s.acked, s.groupTxns, s.groupRows)
	s.f.mu.Lock()
	s.f.st.Missing = s.ap.missing
	s.f.mu.Unlock()
	s.groupTxns, s.groupRows = 0, 0
	s.pending = time.Time{}
	s.f.setPending(time.Time{})
	return nil
}

func (s *session) openGroup(ctx context.Context) error {
	if s.ap.open {
		return nil
	}
	s.groupAt = time.Now()
	return s.ap.begin(ctx)
}

func (s *session) handle(ctx context.Context, x *pgoutput.XLogData) error {
	msg, err := s.dec.Decode(x.Data)
	if err != nil {
		return err
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
				s.f.setPending(m.CommitTime)
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

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
