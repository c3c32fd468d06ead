package twinsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// startSubset computes spec's closure over tables in the run's exported
// snapshot, on a source connection of its own that stays in the snapshot
// until the subset is copied. It must run before copyAll lets the snapshot
// go. Without a subset it returns nil, which every subsetRun method
// accepts.
func (r *run) startSubset(ctx context.Context, spec subsetSpec, tables []*table) (*subsetRun, error) {
	if !spec.enabled() {
		return nil, nil
	}
	if r.coord == nil || r.coord.isReleased() {
		return nil, errors.New("subset: the source snapshot is not held (startSubset must run before the copy)")
	}
	conn, err := r.d.connectSource(ctx)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			conn.Close(context.Background())
		}
	}()
	// Read-write, unlike the copy workers: the key sets are temporary
	// tables, which a READ ONLY transaction may not create. The source
	// role's privileges keep everything else out of reach.
	if err := beginSubset(ctx, conn); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(r.coord.snapshot)); err != nil {
		return nil, fmt.Errorf("subset: import snapshot: %w", redact(err))
	}
	begin := time.Now()
	s, err := computeSubset(ctx, conn, spec, tables)
	if err != nil {
		return nil, err
	}
	ok = true
	ev := r.log.Info().Int("subset_tables", len(s.tables)).Int("whole_tables", len(tables)-len(s.tables)).
		Int("iterations", s.iterations).Dur(logkey.Duration, time.Since(begin))
	ev.Msg("subset closure computed")
	for _, st := range s.tables {
		r.log.Debug().Str(logkey.Table, st.t.schema+"."+st.t.name).Int64(logkey.Rows, st.rows).Msg("subset table")
	}
	return s, nil
}

// copy copies the subset's tables one after another over the connection
// that holds their key sets, through the same masking as every other
// table, and tells copied (if not nil) of each one committed. Call it after
// copyAll has counted its tables in the progress.
func (s *subsetRun) copy(ctx context.Context, r *run, copied func(*table)) error {
	if s == nil || len(s.tables) == 0 {
		return nil
	}
	r.p.mu.Lock()
	r.p.tablesTotal += len(s.tables)
	for _, st := range s.tables {
		r.p.estRows += st.rows
	}
	if r.p.active == nil {
		r.p.active = map[string]struct{}{}
	}
	r.p.mu.Unlock()

	cfg, err := pgx.ParseConfig(r.tgt.ConnString)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	cfg.RuntimeParams["synchronous_commit"] = "off"
	tgt, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to target: %w", err)
	}
	defer tgt.Close(context.Background())
	for _, st := range s.tables {
		name := st.t.schema + "." + st.t.name
		r.p.tableStarted(name)
		begin := time.Now()
		rows, n, err := s.copyTable(ctx, r, tgt, st)
		r.p.tableFinished(name, err == nil)
		if err != nil {
			return fmt.Errorf("table %s (subset): %w", st.t.qname, err)
		}
		r.log.Debug().Str(logkey.Table, name).Int64(logkey.Rows, rows).Int64(logkey.Bytes, n).
			Dur(logkey.Duration, time.Since(begin)).Msg("subset table copied")
		if copied != nil {
			copied(st.t)
		}
	}
	// The key sets go with the transaction's end; the snapshot with it.
	if _, err := s.conn.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("end subset transaction: %w", redact(err))
	}
	return nil
}

// copyTable streams one subset table as worker.copyTable streams a whole
// one, with the closure's COPY on the source. A source fault is not
// retried: the key sets die with the connection.
func (s *subsetRun) copyTable(ctx context.Context, r *run, tgt *pgx.Conn, st *subsetTable) (rows, n int64, err error) {
	if _, err := tgt.Exec(ctx, "BEGIN"); err != nil {
		return 0, 0, fromTarget(err)
	}
	committed := false
	defer func() {
		if !committed {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			tgt.Exec(rctx, "ROLLBACK")
			cancel()
		}
	}()
	// TRUNCATE in the same transaction lets FREEZE apply.
	if _, err := tgt.Exec(ctx, "TRUNCATE ONLY "+st.t.qname); err != nil {
		return 0, 0, fromTarget(err)
	}
	pr, pw := io.Pipe()
	mw := &maskWriter{w: pw, rm: st.t.masker, p: r.p}
	srcDone := make(chan error, 1)
	go func() {
		_, err := s.conn.PgConn().CopyTo(ctx, mw, s.copyOut(st))
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
	_, terr := tgt.PgConn().CopyFrom(ctx, pr, st.t.copyIn())
	pr.CloseWithError(errAbortCopy)
	serr := <-srcDone
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
	if _, err := tgt.Exec(ctx, "COMMIT"); err != nil {
		return rows, n, fromTarget(err)
	}
	committed = true
	return rows, n, nil
}

// close ends the subset's source session (and with it the key sets).
func (s *subsetRun) close() {
	if s == nil || s.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.conn.Close(ctx)
	s.conn = nil
}
