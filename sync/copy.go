package twinsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// masker hands out the row masker for one table's COPY stream. It is the
// masking plan as the copy sees it; package anonymize implements it.
type masker interface {
	// Table returns the masker for the rows of schema.table, which arrive
	// with exactly these columns in this order. A nil RowMasker means every
	// column is kept as is: the plan has judged none of them PII.
	Table(schema, table string, columns []string) (rowMasker, error)
}

// rowMasker masks COPY text rows. A masker is used by one goroutine at a time.
type rowMasker interface {
	// MaskCopyLine appends the masked form of line, one COPY text row
	// without its trailing newline, to dst. Errors must not quote the row.
	MaskCopyLine(dst, line []byte) ([]byte, error)
}

// maskerFunc adapts a function to Masker (anonymize's Plan.Table returns its
// own concrete type).
type maskerFunc func(schema, table string, columns []string) (rowMasker, error)

// Table calls f.
func (f maskerFunc) Table(schema, table string, columns []string) (rowMasker, error) {
	return f(schema, table, columns)
}

// table is one table to copy.
type table struct {
	schema, name string
	oid          uint32   // in the source
	columns      []string // copied columns: generated ones are computed by the target
	pages        int64
	estRows      int64 // reltuples; -1 when never analyzed
	masker       rowMasker
	qname        string
	// binary: the copy workers move its rows in COPY binary (copy_binary.go):
	// nothing to mask and every column of a type both servers read alike.
	binary bool

	// remask gets another masker for these columns: a split table's parts
	// each mask their own stream.
	remask func() (rowMasker, error)
	parts  int // COPY jobs it was split into (planJobs)
}

// adoptColumnOrder copies the columns in the order the masker states, if it
// states one (anonymize's TableMasker masks by position), after checking it
// names exactly the columns the source has.
func (t *table) adoptColumnOrder() error {
	c, ok := t.masker.(interface{ Columns() []string })
	if t.masker == nil || !ok {
		return nil
	}
	want := c.Columns()
	have := map[string]bool{}
	for _, n := range t.columns {
		have[n] = true
	}
	same := len(want) == len(t.columns)
	for _, n := range want {
		same = same && have[n]
	}
	if !same {
		return fmt.Errorf("masking plan for %s.%s has columns (%s) but the source copies (%s): the plan is stale, read the catalog again",
			t.schema, t.name, strings.Join(want, ", "), strings.Join(t.columns, ", "))
	}
	t.columns = append([]string(nil), want...)
	return nil
}

// copyOut reads the table itself: COPY of a table never includes child
// tables' or partitions' rows, and skips the executor a SELECT would need.
func (t *table) copyOut() string {
	if len(t.columns) == 0 {
		return "COPY (SELECT FROM ONLY " + t.qname + ") TO STDOUT"
	}
	return "COPY " + t.qname + " (" + t.columnList() + ") TO STDOUT"
}

func (t *table) copyIn() string { return t.copyInto("FREEZE") }

// copyInto is the target's COPY of t's columns with these options.
func (t *table) copyInto(options ...string) string {
	s := "COPY " + t.qname
	if len(t.columns) > 0 {
		s += " (" + t.columnList() + ")"
	}
	s += " FROM STDIN"
	if len(options) > 0 {
		s += " WITH (" + strings.Join(options, ", ") + ")"
	}
	return s
}

// formatOptions are the COPY options that give the copy workers' format:
// none for text.
func (t *table) formatOptions() []string {
	if t.binary {
		return []string{"FORMAT binary"}
	}
	return nil
}

// outFormat ends a COPY TO of the copy workers' format.
func (t *table) outFormat() string {
	if t.binary {
		return " (FORMAT binary)"
	}
	return ""
}

func (t *table) columnList() string {
	q := make([]string, len(t.columns))
	for i, c := range t.columns {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// listTables reads, in the exported snapshot, the tables whose rows are
// synced, largest first, and gets each one's masker before any row moves.
// Leaf tables only: a partitioned parent has no rows of its own, and ONLY
// keeps inheritance parents from repeating their children's rows.
func (r *run) listTables(ctx context.Context, m masker) ([]*table, error) {
	generated := "AND a.attgenerated = ''"
	if r.srcVersion < 120000 {
		generated = ""
	}
	rows, err := r.coord.conn.Query(ctx, `SELECT c.oid, n.nspname, c.relname, c.relpages::int8, c.reltuples::int8,
		array(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
			AND NOT a.attisdropped `+generated+` ORDER BY a.attnum),
		array(SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
			AND NOT a.attisdropped `+generated+` ORDER BY a.attnum)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence <> 't'
			AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
				AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY c.relpages DESC, c.reltuples DESC, n.nspname, c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list source tables: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*table, error) {
		t := &table{}
		var types []uint32
		err := row.Scan(&t.oid, &t.schema, &t.name, &t.pages, &t.estRows, &t.columns, &types)
		t.qname = pgx.Identifier{t.schema, t.name}.Sanitize()
		t.binary = r.binaryCopy && binaryColumns(types)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list source tables: %w", err)
	}
	var tables []*table
	for _, t := range all {
		if !r.d.Selection.Includes(t.schema, t.name) {
			continue
		}
		if t.masker, err = m.Table(t.schema, t.name, t.columns); err != nil {
			return nil, fmt.Errorf("masking plan for %s.%s: %w", t.schema, t.name, err)
		}
		if err := t.adoptColumnOrder(); err != nil {
			return nil, err
		}
		t.binary = t.binary && masksNothing(t.masker, len(t.columns))
		cols := t.columns
		t.remask = func() (rowMasker, error) {
			rm, err := m.Table(t.schema, t.name, cols)
			if err == nil && (rm == nil) != (t.masker == nil) {
				err = errors.New("the masking plan answered differently for the same table")
			}
			return rm, err
		}
		tables = append(tables, t)
	}
	return tables, nil
}

// copyAll copies the tables with sync.parallel workers, each in its own
// source transaction in the exported snapshot, big tables as several ctid
// ranges at once (planJobs, copyScheduler), and tells copied (if not nil)
// of each table whose COPY (every part of it) has committed.
func (r *run) copyAll(ctx context.Context, tables []*table, copied func(*table)) error {
	r.p.startCopy(tables, time.Now())
	defer r.coord.release()
	if len(tables) == 0 {
		return nil
	}
	planned, err := r.planJobs(tables)
	if err != nil {
		return err
	}
	sched := newCopyScheduler(planned)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		started  atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	onStart := func() {
		// Once every job's COPY has begun in a worker that holds the
		// snapshot, nobody needs to join it again: let the source go.
		if started.Add(1) == int64(sched.total) {
			r.coord.release()
		}
	}
	for range min(r.parallel, sched.total) {
		wg.Go(func() {
			w := &worker{r: r, copied: copied}
			defer w.close()
			if err := w.work(ctx, sched, onStart); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// sideError marks which end of a COPY failed; only source faults are retried.
type sideError struct {
	source bool
	err    error
}

func (e *sideError) Error() string { return e.err.Error() }
func (e *sideError) Unwrap() error { return e.err }

func fromSource(err error) error { return &sideError{source: true, err: redact(err)} }
func fromTarget(err error) error { return &sideError{err: redact(err)} }

func isSourceFault(err error) bool {
	var se *sideError
	return errors.As(err, &se) && se.source && retriable(se.err)
}
