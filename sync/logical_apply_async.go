package twinsync

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// A group's commit can run in the background: the session turns the
// group's waiting changes into a job (its COPYs and statement batches,
// then the progress, COMMIT and the next group's BEGIN, in order) and goes
// on reading and masking the next group while the twin executes the job.
// At most one job is in flight; anything else that needs the connection
// waits for it first (wait), so the twin still sees one ordered session.
// The job's commit counts only once wait has seen it succeed: nothing is
// acknowledged to the source before that.

// applyStep is one round trip of a job: a COPY, or a batch of statements.
type applyStep struct {
	copySQL  string
	copyData []byte
	batch    *pgconn.Batch
	queued   []queuedStmt
}

type applyJob struct {
	steps []applyStep
	done  chan jobResult
}

type jobResult struct {
	err     error
	missing int64
	took    time.Duration
}

// record makes the flushes that follow collect their round trips into a
// job instead of running them.
func (a *applier) record() { a.rec = &applyJob{} }

// submit starts the recorded job once the one in flight is done (the
// session settles that one first).
func (a *applier) submit(ctx context.Context) error {
	job := a.rec
	a.rec = nil
	if err := a.wait(); err != nil {
		return err
	}
	job.done = make(chan jobResult, 1)
	a.job = job
	go func() { job.done <- a.run(ctx, job) }()
	return nil
}

// run executes a job's steps (on the job's goroutine: it touches nothing
// of the applier but the connection, which nobody else uses meanwhile).
func (a *applier) run(ctx context.Context, job *applyJob) jobResult {
	start := time.Now()
	var res jobResult
	for _, st := range job.steps {
		if st.batch == nil {
			if _, err := a.conn.CopyFrom(ctx, bytes.NewReader(st.copyData), st.copySQL); err != nil {
				res.err = fmt.Errorf("apply: %w", redact(err))
				break
			}
			continue
		}
		n, err := a.execBatch(ctx, st.batch, st.queued)
		res.missing += n
		if err != nil {
			res.err = err
			break
		}
	}
	res.took = time.Since(start)
	return res
}

// wait waits for the job in flight, if any, and returns its error. A job
// that failed leaves the connection in an unknown state: its error stays.
func (a *applier) wait() error {
	if a.job != nil {
		at := a.tm.now()
		res := <-a.job.done
		a.tm.since(&a.tm.twin, at)
		if a.tm != nil && a.tm.on {
			a.tm.jobs += res.took
		}
		a.job = nil
		a.missing += res.missing
		if res.err != nil && a.jobErr == nil {
			a.jobErr = res.err
		}
	}
	return a.jobErr
}

// jobDone reports whether no job is in flight any more (without waiting).
func (a *applier) jobDone() bool {
	if a.job == nil {
		return true
	}
	select {
	case res := <-a.job.done:
		a.job.done <- res // wait takes it
		return true
	default:
		return false
	}
}

// execBatch runs a batch and counts the updates and deletes that found no
// row.
func (a *applier) execBatch(ctx context.Context, b *pgconn.Batch, q []queuedStmt) (int64, error) {
	res, err := a.conn.ExecBatch(ctx, b).ReadAll()
	if err != nil {
		return 0, fmt.Errorf("apply: %w", redact(err))
	}
	var missing int64
	for i, r := range res {
		if i >= len(q) || q[i].want == 0 {
			continue
		}
		if n := q[i].want - r.CommandTag.RowsAffected(); n > 0 {
			missing += n
			a.log.Warn().Str(logkey.Table, q[i].table).Int64(logkey.Rows, n).Msg("update or delete found no row in the twin")
		}
	}
	return missing, nil
}
