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
	pending   time.Time      // source commit time of the oldest transaction of the open group
	inflight  *inflightGroup // committing in the background (logical_stream_async.go)
	streaming bool           // StartReplication succeeded
	sentAck   pgoutput.LSN   // acked as last sent
	sentAt    time.Time
	tm        *applyTimer
}

func (f *follower) session(ctx context.Context) (err error) {
	s := &session{f: f, log: f.logger(), relset: pgoutput.NewRelationSet(), rels: map[uint32]*relState{},
		versions: map[uint64]*relState{}, streams: map[uint32]*streamBuf{}, seqAt: time.Now(), lazy: map[uint64]bool{},
		tm: newApplyTimer()}
	defer s.close()
	defer s.tm.report()

	scfg, err := f.Source.connConfig()
	if err != nil {
		return err
	}
	// The replication connection (a walsender's fork and authentication)
	// is made while the twin and the source are read.
	replc := make(chan replConn, 1)
	go func() {
		c, err := pgoutput.ConnectConfig(ctx, scfg.Config.Copy())
		replc <- replConn{c, err}
	}()
	taken := false
	defer func() {
		if !taken {
			if r := <-replc; r.conn != nil {
				r.conn.Close(context.WithoutCancel(ctx))
			}
		}
	}()

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
	s.ap.tm = s.tm
	s.tm.step("twin")
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
	s.tm.step("progress")

	if s.src, err = pgx.ConnectConfig(ctx, scfg); err != nil {
		return fmt.Errorf("connect to source: %w", err)
	}
	s.tm.step("source")
	version, err := f.sourceVersion(ctx, s.src)
	if err != nil {
		return err
	}
	if err := f.checkSlot(ctx, s.src, version); err != nil {
		return err
	}
	s.tm.step("slot")
	// The twin's record of its tables first: the plan tells the tables it
	// blocks that the twin has from those it does not.
	if err := s.loadRelations(ctx, version); err != nil {
		return err
	}
	s.tm.step("relations")
	// Tables copied again may need the stream from before the progress,
	// and bound the acknowledgements.
	s.acked = s.complete()
	f.markApplied(s.complete(), 0, 0, 0)
	r := <-replc
	taken = true
	if r.err != nil {
		return fmt.Errorf("source replication connection: %w", r.err)
	}
	s.repl = r.conn
	s.tm.step("replconn")
	// The stream starts before the masking plan is read: the source
	// decodes the first changes meanwhile, and none is looked at before
	// the plan is taken.
	args := f.pluginArgs(version)
	if err = s.repl.StartReplication(ctx, f.Slot, s.from(), args); err != nil {
		return slotError(f.Slot, err)
	}
	s.streaming = true
	s.tm.step("started")
	if s.masker, err = s.takePlan(f.Plan(ctx, s.src)); err != nil {
		return fmt.Errorf("masking plan: %w", err)
	}
	s.tm.step("streaming")
	if s.tm.on {
		f.mu.Lock()
		fmt.Fprintf(&s.tm.steps, " (since Start %s)", time.Since(f.st.StartedAt).Round(100*time.Microsecond))
		f.mu.Unlock()
	}
	f.setState(stateStreaming, "")
	s.log.Info().Str(logkey.Slot, f.Slot).Str(logkey.LSN, s.from().String()).Int(logkey.SourceVersion, version).
		Int(logkey.ProtoVersion, args.ProtoVersion).Msg("streaming from the source")
	return s.loop(ctx)
}

type replConn struct {
	conn *pgoutput.Conn
	err  error
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
		// A group committing in the background counts if it committed;
		// the open one is rolled back.
		if s.inflight != nil && s.ap.wait() == nil {
			s.settle(ctx)
		}
		s.ap.rollback(ctx)
		s.ap.conn.Close(ctx)
	}
	if s.repl != nil {
		// The source hears of the last progress now: the next session
		// starts decoding from there, not from the last status.
		if s.streaming && s.acked > s.sentAck {
			s.sendStatus(ctx)
		}
		s.repl.Close(ctx)
	}
	if s.src != nil {
		s.src.Close(ctx)
	}
}

func (s *session) idle() bool {
	return !s.inTxn && !s.ap.open && len(s.streams) == 0 && s.inflight == nil
}

func (s *session) sendStatus(ctx context.Context) error {
	s.sentAck, s.sentAt = s.acked, time.Now()
	return s.repl.SendStandbyStatus(ctx, pgoutput.StandbyStatus{Write: s.acked, Flush: s.acked, Apply: s.acked})
}

func (s *session) loop(ctx context.Context) error {
	nextStatus := time.Now().Add(statusEvery)
	// receive waits by the connection's read deadline: ctx's end moves it
	// to now.
	stop := context.AfterFunc(ctx, func() { s.repl.PgConn().Conn().SetReadDeadline(time.Now()) })
	defer stop()
	for {
		if !s.inTxn {
			if err := s.boundary(ctx); err != nil {
				return err
			}
		}
		if err := s.settleIfDone(ctx); err != nil {
			return err
		}
		deadline := time.Now().Add(pollInterval)
		if s.ap.open && !s.inTxn || s.inflight != nil {
			deadline = time.Now().Add(groupIdle)
		}
		deadline = minTime(deadline, nextStatus)
		at := s.tm.now()
		msg, err := s.receive(ctx, deadline)
		s.tm.since(&s.tm.recv, at)
		if err != nil && pgoutput.Timeout(err) && ctx.Err() == nil {
			if s.inflight != nil {
				if err := s.settle(ctx); err != nil {
					return err
				}
			}
			if s.ap.open && !s.inTxn {
				// Nothing more is waiting: commit (in the background, and
				// settled at the next pause).
				if err := s.commitGroupAsync(ctx, false); err != nil {
					return err
				}
			}
			if !time.Now().Before(nextStatus) || s.ackDue() {
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
		if time.Now().After(nextStatus) || s.ackDue() {
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
			nextStatus = time.Now().Add(statusEvery)
		}
	}
}

// ackEvery is how often, at most, the source hears of durable progress
// while there is some: as a subscription's apply worker does, so the
// slot's positions (and the WAL it keeps, and where a restart decodes
// from) follow the twin closely rather than by statusEvery.
const ackEvery = 100 * time.Millisecond

func (s *session) ackDue() bool {
	return s.acked > s.sentAck && time.Since(s.sentAt) >= ackEvery
}

// receive reads the next message, waiting until deadline at most. The
// deadline is the connection's, not a context's: a context with its timer
// for every message cost more than decoding the message.
func (s *session) receive(ctx context.Context, deadline time.Time) (pgoutput.StreamMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.repl.PgConn().Conn().SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("source replication connection: %w", err)
	}
	return s.repl.ReceiveMessage(context.Background())
}

// boundary runs between source transactions: commit a big or old group,
// serve a snapshot request, copy sequences when due.
func (s *session) boundary(ctx context.Context) error {
	if s.ap.open && (s.groupRows >= groupRows || time.Since(s.groupAt) >= groupAge) {
		// More is coming: the next group opens with this one's commit.
		if err := s.commitGroupAsync(ctx, true); err != nil {
			return err
		}
	}
	// What follows may need the twin as the commits left it.
	if s.inflight != nil && (s.copying != nil || len(s.ddl.det) > 0 || time.Since(s.ddl.tablesAt) >= s.f.StatusInterval ||
		time.Since(s.seqAt) >= s.f.SequenceInterval) {
		if err := s.settle(ctx); err != nil {
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
	if time.Since(s.seqAt) >= s.f.SequenceInterval {
		// Between groups: a stream that never pauses keeps one open (the
		// background commits open the next), so end it here.
		if err := s.commitGroup(ctx); err != nil {
			return err
		}
		if err := s.syncSequences(ctx); err != nil {
			return err
		}
	}
	return s.followNewTables(ctx)
}

func (s *session) commitGroup(ctx context.Context) error {
	if err := s.settle(ctx); err != nil {
		return err
	}
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
	at := s.tm.now()
	if err := s.ap.commit(ctx, s.f.Slot, s.lastEnd); err != nil {
		return err
	}
	s.tm.since(&s.tm.commit, at)
	if s.tm.on {
		s.tm.groups++
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

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
