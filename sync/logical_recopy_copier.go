package twinsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// copyJob is one table being copied again beside the stream.
type copyJob struct {
	relid  uint32
	cancel context.CancelFunc
	done   chan copyResult
}

// copyResult is what a copier committed: the table's record (m nil: the
// table is gone from the source) and the snapshot's consistent point.
type copyResult struct {
	relid uint32
	m     *relMap
	lsn   pgoutput.LSN
	rows  int64
	took  time.Duration
	err   error
}

// startCopy begins the next queued copy once the marks are committed; one
// table at a time, the others wait marked (their changes dropped).
func (s *session) startCopy(ctx context.Context) {
	if s.copying != nil || s.ddl.marked {
		return
	}
	var d *detached
	for _, c := range s.ddl.det {
		if c.state == tableCopy && (d == nil || c.relid < d.relid) {
			d = c
		}
	}
	if d == nil {
		return
	}
	var m *relMap
	if om := s.ddl.maps[d.relid]; om != nil {
		cp := *om
		m = &cp
	}
	s.ddl.copies++
	cctx, cancel := context.WithCancel(ctx)
	job := &copyJob{relid: d.relid, cancel: cancel, done: make(chan copyResult, 1)}
	s.copying = job
	mk, n, version, dd := s.masker, s.ddl.copies, s.ddl.version, *d
	go func() {
		start := time.Now()
		res := s.f.copyTableAgain(cctx, &dd, m, mk, version, n)
		res.relid, res.took = d.relid, time.Since(start)
		job.done <- res
	}()
}

// stopCopy ends the copy in progress, if any, and waits for it: its twin
// transaction is rolled back, the table stays marked.
func (s *session) stopCopy() {
	if s.copying == nil {
		return
	}
	s.copying.cancel()
	<-s.copying.done
	s.copying = nil
}

// copyTableAgain copies table d from a temporary slot's exported snapshot
// into the twin over connections of its own, and commits the rows with the
// table's record: state sync at the snapshot's consistent point.
func (f *follower) copyTableAgain(ctx context.Context, d *detached, m *relMap, mk masker, version, n int) (res copyResult) {
	fail := func(err error) copyResult { return copyResult{err: err} }
	cfg, err := f.Source.connConfig()
	if err != nil {
		return fail(err)
	}
	repl, err := pgoutput.ConnectConfig(ctx, &cfg.Config)
	if err != nil {
		return fail(fmt.Errorf("source replication connection: %w", redact(err)))
	}
	defer repl.Close(context.WithoutCancel(ctx))
	// Slot names: at most 63 of [a-z0-9_].
	suffix := fmt.Sprintf("_copy_%d_%d", os.Getpid(), n)
	slot := strings.ToLower(f.Slot)
	slot = slot[:min(len(slot), 63-len(suffix))] + suffix
	cs, err := repl.CreateReplicationSlot(ctx, slot, "pgoutput", pgoutput.SlotOptions{Temporary: true, Snapshot: pgoutput.SnapshotExport})
	if err != nil {
		return fail(fmt.Errorf("%w (the source needs a free slot for it: raise max_replication_slots; or pgtwin sync now --resync)", redact(err)))
	}
	// ConnectConfig made cfg a replication connection's: start over.
	if cfg, err = f.Source.connConfig(); err != nil {
		return fail(err)
	}
	src, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fail(fmt.Errorf("connect to source: %w", redact(err)))
	}
	defer src.Close(context.WithoutCancel(ctx))
	if _, err := src.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fail(redact(err))
	}
	if _, err := src.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(cs.SnapshotName)); err != nil {
		return fail(fmt.Errorf("import snapshot: %w", redact(err)))
	}
	tcs, err := f.TargetConn(ctx)
	if err != nil {
		return fail(err)
	}
	tcfg, err := targetConfig(tcs)
	if err != nil {
		return fail(err)
	}
	tcfg.RuntimeParams["application_name"] = "pgtwin copy"
	tc, err := pgconn.ConnectConfig(ctx, tcfg)
	if err != nil {
		return fail(fmt.Errorf("connect to the twin: %w", err))
	}
	defer tc.Close(context.WithoutCancel(ctx))
	if _, err := tc.Exec(ctx, "BEGIN").ReadAll(); err != nil {
		return fail(redact(err))
	}
	schema, name, attrs, ok, err := readAttrs(ctx, src, d.relid, version)
	if err != nil {
		return fail(err)
	}
	res.lsn = cs.ConsistentPoint
	if !ok {
		// Dropped on the source since: the twin keeps what it had, and
		// the stream sends nothing more of it.
		del := fmt.Sprintf("DELETE FROM pgtwin_sync.relations WHERE slot = %s AND relid = %d AND cols = '{\"cols\": []}'::jsonb", quoteLiteral(f.Slot), d.relid)
		if m != nil {
			del = fmt.Sprintf("UPDATE pgtwin_sync.relations SET state = NULL, copied_lsn = NULL WHERE slot = %s AND relid = %d", quoteLiteral(f.Slot), d.relid)
		}
		if _, err := tc.Exec(ctx, del).ReadAll(); err != nil {
			return fail(redact(err))
		}
		if _, err := tc.Exec(ctx, "COMMIT").ReadAll(); err != nil {
			return fail(redact(err))
		}
		return res
	}
	qname := pgx.Identifier{schema, name}.Sanitize()
	if err := reshape(ctx, tc, src, d.relid, m, d.schema, d.name, schema, name, attrs); err != nil {
		return fail(err)
	}
	cols := live(attrs)
	if res.rows, err = copyTable(ctx, tc, src, mk, schema, name, cols); err != nil {
		var pe *planError
		if !errors.As(err, &pe) && !errors.Is(err, errRetryLater) {
			return fail(fmt.Errorf("re-copy %s: %w", qname, err))
		}
		// A plan made before the table (or a column) existed: read it
		// again, through a connection of its own (not in the snapshot).
		if mk, err = f.planOwn(ctx); err != nil {
			return fail(fmt.Errorf("re-copy %s: masking plan: %w", qname, err))
		}
		if res.rows, err = copyTable(ctx, tc, src, mk, schema, name, cols); err != nil {
			return fail(fmt.Errorf("re-copy %s: %w", qname, err))
		}
	}
	if _, err := src.Exec(ctx, "COMMIT"); err != nil {
		return fail(fmt.Errorf("re-copy %s: %w", qname, redact(err)))
	}
	if f.fault != nil {
		f.fault("recopy")
	}
	res.m = mapOf(schema, name, attrs)
	if err := saveRelationOn(ctx, tc, f.Slot, d.relid, res.m, schema, name, tableSync, res.lsn); err != nil {
		return fail(err)
	}
	if _, err := tc.Exec(ctx, "COMMIT").ReadAll(); err != nil {
		return fail(fmt.Errorf("re-copy %s: commit: %w", qname, redact(err)))
	}
	return res
}

// planOwn reads the masking plan over a source connection of its own; a
// plan that blocks tables is taken for the others (the copy's table, if
// blocked, is refused by the masker).
func (f *follower) planOwn(ctx context.Context) (masker, error) {
	cfg, err := f.Source.connConfig()
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to source: %w", redact(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	mk, err := f.Plan(ctx, conn)
	var u *unclassifiedPlan
	if errors.As(err, &u) {
		return u.masker, nil
	}
	return mk, err
}
