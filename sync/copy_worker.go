package twinsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// errAbortCopy ends the half of a COPY whose other half failed. It is what a
// server logs for the aborted COPY, so it says nothing about the rows.
var errAbortCopy = errors.New("pgtwin aborted the copy stream")

// worker copies tables one after another over one source connection (in the
// snapshot) and one target connection.
type worker struct {
	r      *run
	src    *pgx.Conn
	tgt    *pgx.Conn
	copied func(*table) // may be nil
}

func (w *worker) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.closeSource(ctx)
	if w.tgt != nil {
		w.tgt.Close(ctx)
	}
}

func (w *worker) closeSource(ctx context.Context) {
	if w.src != nil {
		w.src.Close(ctx)
		w.src = nil
	}
}

func (w *worker) work(ctx context.Context, sched *copyScheduler, onStart func()) error {
	cfg, err := pgx.ParseConfig(w.r.tgt.ConnString)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	// A crash loses the whole run anyway: no need to wait for WAL flushes.
	cfg.RuntimeParams["synchronous_commit"] = "off"
	if w.tgt, err = pgx.ConnectConfig(ctx, cfg); err != nil {
		return fmt.Errorf("connect to target: %w", err)
	}
	// Each worker joins the snapshot when it takes its first table: one that
	// finds the queue already empty never needs the snapshot, which may be
	// released by then.
	var home *tableJobs
	for {
		var j *job
		if j, home = sched.next(home); j == nil {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.copyWithRetry(ctx, j, onStart); err != nil {
			if j.split() {
				return fmt.Errorf("table %s, part %d of %d: %w", j.t.qname, j.part+1, j.tr.parts, err)
			}
			return fmt.Errorf("table %s: %w", j.t.qname, err)
		}
	}
	if w.src == nil {
		return nil
	}
	// Done: end the transaction so this worker stops holding the snapshot.
	if _, err := w.src.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("end source transaction: %w", redact(err))
	}
	return nil
}

// joinSnapshot connects to the source and imports the exported snapshot,
// retrying connection faults in either.
func (w *worker) joinSnapshot(ctx context.Context) error {
	cfg, err := w.r.d.Source.connConfig()
	if err != nil {
		return err
	}
	var src *pgx.Conn
	err = w.r.d.Backoff.retry(ctx, w.r.log, "join source snapshot", func() error {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		if err := w.r.coord.importSnapshot(ctx, c); err != nil {
			c.Close(context.Background())
			return err
		}
		src = c
		return nil
	})
	if err != nil {
		if errors.Is(err, errSnapshotReleased) || classify(err) == errInvalidParameter {
			return fmt.Errorf("cannot rejoin the source snapshot (the source connection that exported it is gone, or it was released); the sync must start over: %w", err)
		}
		return fmt.Errorf("join source snapshot: %w", redact(err))
	}
	w.src = src
	return nil
}

// copyWithRetry copies one job, a table or a ctid range of one; when the
// source connection drops it reconnects into the same snapshot and copies
// the job again from the start: its target transaction rolled back, so a
// retry inserts nothing twice, and a part that committed is never run
// again. The table counts as copied, and copied hears of it, once all its
// parts have committed.
func (w *worker) copyWithRetry(ctx context.Context, j *job, onStart func()) error {
	b := w.r.d.Backoff.orDefault()
	wait := b.Initial
	t := j.t
	name := t.schema + "." + t.name
	tlog := w.r.log.With().Str(logkey.Table, name).Logger()
	log := tlog
	if j.split() {
		log = log.With().Int(logkey.Part, j.part+1).Int(logkey.Parts, j.tr.parts).Logger()
	}
	started := false
	fail := func() { j.tr.fail(w.r.p, name) }
	begin := time.Now()
	for attempt := 1; ; attempt++ {
		if w.src == nil {
			if err := w.joinSnapshot(ctx); err != nil {
				fail()
				return err
			}
		}
		if !started {
			// Counted only once this worker holds the snapshot itself, so
			// the coordinator may let it go after the last job's start.
			started = true
			j.tr.start(w.r.p, name)
			onStart()
		}
		rows, n, err := w.copyTable(ctx, j)
		if err == nil {
			if j.split() {
				log.Debug().Int64(logkey.Rows, rows).Int64(logkey.Bytes, n).
					Dur(logkey.Duration, time.Since(begin)).Msg("table part copied")
			}
			last, rows, n, took := j.tr.commit(w.r.p, name, rows, n)
			if !last {
				return nil
			}
			tlog.Debug().Int64(logkey.Rows, rows).Int64(logkey.Bytes, n).Bool(logkey.Binary, t.binary).
				Dur(logkey.Duration, took).Msg("table copied")
			if w.copied != nil {
				w.copied(t)
			}
			return nil
		}
		w.r.p.uncount(rows, n)
		if !isSourceFault(err) || attempt >= b.Attempts || ctx.Err() != nil {
			fail()
			if isSourceFault(err) && ctx.Err() == nil {
				return fmt.Errorf("%w after %d attempts: %w", errSourceUnreachable, attempt, err)
			}
			return err
		}
		log.Warn().Err(err).Int(logkey.Attempt, attempt).Dur(logkey.Duration, wait).Msg("source connection lost during copy, retrying")
		w.closeSource(ctx)
		select {
		case <-ctx.Done():
			fail()
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, b.Max)
	}
}

// copyTable streams one job: source COPY TO → masker → target COPY FROM, in
// a target transaction of its own. A whole table is truncated first so
// FREEZE applies (the twin's pages are born frozen and hinted, and branches
// never rewrite them just to set hint bits; wal_level minimal skips its
// WAL); the parts of a split table cannot all truncate it, so they insert
// into the fresh empty table and freezeSplit freezes it later. Nothing is
// buffered beyond a chunk in memory.
func (w *worker) copyTable(ctx context.Context, j *job) (rows, n int64, err error) {
	if _, err := w.tgt.Exec(ctx, "BEGIN"); err != nil {
		return 0, 0, fromTarget(err)
	}
	committed := false
	defer func() {
		if !committed {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			w.tgt.Exec(rctx, "ROLLBACK")
			cancel()
		}
	}()
	if !j.split() {
		if _, err := w.tgt.Exec(ctx, "TRUNCATE ONLY "+j.t.qname); err != nil {
			return 0, 0, fromTarget(err)
		}
	}

	pr, pw := io.Pipe()
	mw := &maskWriter{w: pw, rm: j.masker, p: w.r.p}
	if j.t.binary {
		// Nothing to mask (listTables): the rows pass through as they come.
		mw.rm, mw.bin = nil, newBinaryCounter(len(j.t.columns))
	}
	srcDone := make(chan error, 1)
	go func() {
		_, err := w.src.PgConn().CopyTo(ctx, mw, j.copyOut())
		if err == nil {
			err = mw.finish()
		}
		if err != nil {
			pw.CloseWithError(errAbortCopy)
		} else {
			pw.Close()
		}
		srcDone <- err
	}()
	_, terr := w.tgt.PgConn().CopyFrom(ctx, pr, j.copyIn())
	pr.CloseWithError(errAbortCopy) // unblocks the source half if the target stopped reading
	serr := <-srcDone
	// What Progress has been told, so a retry can take it back.
	rows, n = mw.rows-mw.pendRows, mw.bytes-mw.pendBytes

	switch {
	case serr != nil && !errors.Is(serr, errAbortCopy):
		var me *maskError
		if errors.As(serr, &me) {
			return rows, n, serr
		}
		return rows, n, fromSource(serr)
	case terr != nil:
		return rows, n, fromTarget(terr)
	case serr != nil:
		return rows, n, fromSource(serr)
	}
	if _, err := w.tgt.Exec(ctx, "COMMIT"); err != nil {
		return rows, n, fromTarget(err)
	}
	committed = true
	return rows, n, nil
}

// flushSize is how much masked output collects before it goes to the
// target: about one CopyData message of pgconn's.
const flushSize = 64 << 10

// maskError is a masker's failure on a row; never retried.
type maskError struct {
	row int64
	err error
}

func (e *maskError) Error() string { return fmt.Sprintf("mask row %d: %v", e.row, e.err) }
func (e *maskError) Unwrap() error { return e.err }

// maskWriter receives the source's COPY text (a row per Write in practice,
// but any split is handled), masks it line by line and passes it on in
// chunks. COPY text escapes newlines inside values, so '\n' ends a row.
type maskWriter struct {
	w   io.Writer
	rm  rowMasker      // nil: pass through
	bin *binaryCounter // a pass-through stream in COPY binary; rm is nil
	p   *progress

	carry []byte // a row split across writes
	out   []byte

	rows, bytes         int64 // this table, including what is not yet reported
	pendRows, pendBytes int64 // not yet added to p
}

func (m *maskWriter) Write(p []byte) (int, error) {
	m.bytes += int64(len(p))
	m.pendBytes += int64(len(p))
	if m.rm == nil {
		var nl int64
		if m.bin != nil {
			var err error
			if nl, err = m.bin.feed(p); err != nil {
				return 0, err
			}
		} else {
			nl = int64(bytes.Count(p, []byte{'\n'}))
		}
		m.rows += nl
		m.pendRows += nl
		m.out = append(m.out, p...)
	} else {
		data := p
		if len(m.carry) > 0 {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				m.carry = append(m.carry, p...)
				return len(p), nil
			}
			m.carry = append(m.carry, p[:i]...)
			if err := m.maskLine(m.carry); err != nil {
				return 0, err
			}
			m.carry = m.carry[:0]
			data = p[i+1:]
		}
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			if err := m.maskLine(data[:i]); err != nil {
				return 0, err
			}
			data = data[i+1:]
		}
		m.carry = append(m.carry, data...)
	}
	if len(m.out) >= flushSize {
		if err := m.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (m *maskWriter) maskLine(line []byte) error {
	out, err := m.rm.MaskCopyLine(m.out, line)
	if err != nil {
		return &maskError{row: m.rows + 1, err: err}
	}
	m.out = append(out, '\n')
	m.rows++
	m.pendRows++
	return nil
}

func (m *maskWriter) flush() error {
	if len(m.out) > 0 {
		if _, err := m.w.Write(m.out); err != nil {
			return err
		}
		m.out = m.out[:0]
	}
	m.p.add(m.pendRows, m.pendBytes)
	m.pendRows, m.pendBytes = 0, 0
	return nil
}

// finish flushes the rest once the source's COPY has ended.
func (m *maskWriter) finish() error {
	if len(m.carry) > 0 || m.bin != nil && !m.bin.done() {
		return errors.New("source COPY stream ended in the middle of a row")
	}
	return m.flush()
}
