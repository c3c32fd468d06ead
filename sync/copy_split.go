package twinsync

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// A big table copied as one COPY stream is the fill's critical path while
// the other workers idle after the small tables. From splitPages (source
// relpages) on, a table is copied as ctid ranges by several workers at
// once, all in the same exported snapshot, so together they hold exactly
// the snapshot's rows. A ctid range is a TID Range Scan from PostgreSQL 14
// on; older sources would seqscan the table once per range, so they are
// not split.
//
// It is off: measured against one stream per table (TestBenchDumpSync with
// PGTWIN_BENCH_SPLIT_AB=1, a source on the same host) the split made the
// 1.4 GB sync 1.36x slower. Ranges cannot truncate the table, so they lose
// wal_level minimal's WAL skip and COPY FREEZE and the table must be frozen
// afterwards; that costs more than the second stream gains while the host's
// cores are busy anyway. A remote source whose single stream is bound by the
// network may gain from it; nothing here measures that, so nothing turns it on.
var splitPages int64 = math.MaxInt64 // tests set 4096 (32 MB) or less

// splitMinVersion is the first source version with TID Range Scans.
const splitMinVersion = 140000

// job is one COPY a worker runs: a whole table, or one ctid range of it.
type job struct {
	t      *table
	tr     *tableRun
	part   int       // 0-based; parts == 1 is a whole table
	lo, hi int64     // pages [lo, hi); hi < 0: to the end of the table
	masker rowMasker // this part's own: a masker serves one stream
}

func (j *job) split() bool { return j.tr.parts > 1 }

// tableRun is what a table's parts share: the table counts as started with
// its first part and as copied (progress, the copied hook) once every part
// has committed.
type tableRun struct {
	parts int

	mu      sync.Mutex
	begin   time.Time
	started bool
	done    int
	failed  bool
	rows, n int64
}

// start counts the table as being copied when its first part starts.
func (tr *tableRun) start(p *progress, name string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !tr.started {
		tr.started, tr.begin = true, time.Now()
		p.tableStarted(name)
	}
}

// commit records a committed part and reports, for the last one, the
// table's rows, bytes and copy time.
func (tr *tableRun) commit(p *progress, name string, rows, n int64) (last bool, total, bytes int64, took time.Duration) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.done++
	tr.rows += rows
	tr.n += n
	if tr.done < tr.parts || tr.failed {
		return false, 0, 0, 0
	}
	p.tableFinished(name, true)
	return true, tr.rows, tr.n, time.Since(tr.begin)
}

// fail ends the table as failed, once, if it had started.
func (tr *tableRun) fail(p *progress, name string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.started && !tr.failed {
		tr.failed = true
		p.tableFinished(name, false)
	}
}

// splitParts is how many ranges t is copied as, 1 for a whole table: about
// two per worker, so idle workers can take a share of a big table that
// another worker is copying, and none smaller than half of splitPages.
func (r *run) splitParts(t *table) int {
	if r.parallel < 2 || r.srcVersion < splitMinVersion || t.pages < splitPages || t.remask == nil {
		return 1
	}
	return int(max(2, min(int64(2*r.parallel), t.pages*2/splitPages)))
}

// planJobs turns each table into its COPY jobs: tables of splitPages or
// more into ctid ranges, the last one open-ended because relpages is an
// estimate and the table may have grown since it was taken. Each extra
// part gets its own masker now, before any row moves.
func (r *run) planJobs(tables []*table) ([]*tableJobs, error) {
	var out []*tableJobs
	for _, t := range tables {
		k := r.splitParts(t)
		t.parts = k
		tr := &tableRun{parts: k}
		tj := &tableJobs{}
		per := (t.pages + int64(k) - 1) / int64(k)
		for i := range k {
			j := &job{t: t, tr: tr, part: i, lo: int64(i) * per, hi: int64(i+1) * per, masker: t.masker}
			if i == k-1 {
				j.hi = -1
			}
			if i > 0 {
				m, err := t.remask()
				if err != nil {
					return nil, fmt.Errorf("masking plan for %s.%s: %w", t.schema, t.name, err)
				}
				j.masker = m
			}
			tj.jobs = append(tj.jobs, j)
		}
		tj.back = k
		out = append(out, tj)
	}
	return out, nil
}

// tableJobs are one table's jobs not yet handed out: [front, back).
type tableJobs struct {
	jobs        []*job
	front, back int
	started     bool
}

// copyScheduler hands out jobs so each table keeps a worker of its own, as
// when tables were copied whole (the largest first, and a table's index
// builds begin while bigger ones still copy), and a worker with no table
// left to start helps the one with the most ranges left, from its end.
type copyScheduler struct {
	mu     sync.Mutex
	tables []*tableJobs // largest first
	total  int
}

func newCopyScheduler(tables []*tableJobs) *copyScheduler {
	s := &copyScheduler{tables: tables}
	for _, tj := range tables {
		s.total += len(tj.jobs)
	}
	return s
}

// next returns the worker's next job and the table it is now the home
// worker of (nil while it helps), or nil when every job is out.
func (s *copyScheduler) next(home *tableJobs) (*job, *tableJobs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if home != nil && home.front < home.back {
		home.front++
		return home.jobs[home.front-1], home
	}
	for _, tj := range s.tables {
		if !tj.started {
			tj.started = true
			tj.front++
			return tj.jobs[0], tj
		}
	}
	var most *tableJobs
	for _, tj := range s.tables {
		if n := tj.back - tj.front; n > 0 && (most == nil || n > most.back-most.front) {
			most = tj
		}
	}
	if most == nil {
		return nil, nil
	}
	most.back--
	return most.jobs[most.back], nil
}

// copyOut is the COPY that reads the job's rows: the whole table, or its
// pages [lo, hi) through a TID Range Scan. ONLY, as COPY of a table itself
// reads no child's rows.
func (j *job) copyOut() string {
	if !j.split() {
		return j.t.copyOut() + j.t.outFormat()
	}
	cond := "ctid >= '(" + strconv.FormatInt(j.lo, 10) + ",0)'::pg_catalog.tid"
	if j.hi >= 0 {
		cond += " AND ctid < '(" + strconv.FormatInt(j.hi, 10) + ",0)'::pg_catalog.tid"
	}
	return "COPY (SELECT " + j.t.columnList() + " FROM ONLY " + j.t.qname + " WHERE " + cond + ") TO STDOUT" + j.t.outFormat()
}

// copyIn is the target's COPY: a whole table truncates first in its
// transaction and copies FREEZE; the parts of a split table share the
// empty table the pre-data restore created, each in its own transaction, so
// they cannot freeze (freezeSplit does, once nothing else runs).
func (j *job) copyIn() string {
	if !j.split() {
		return j.t.copyInto(append(j.t.formatOptions(), "FREEZE")...)
	}
	return j.t.copyInto(j.t.formatOptions()...)
}

// freezeSplit freezes the split tables once the fill's other sessions have
// ended: rows the parts wrote without FREEZE are neither frozen nor marked
// all-visible, and a branch's first vacuum would rewrite every page of
// them (a full copy of the table on a copy-on-write branch). Earlier, a
// snapshot older than a part's commit (another table's COPY, an index
// build) would hold the freeze back, and a VACUUM started as soon as the
// copy ends took the table's lock before its own index builds and delayed
// them (measured: the critical path grew).
func (r *run) freezeSplit(ctx context.Context, tables []*table) error {
	var split []*table
	for _, t := range tables {
		if t.parts > 1 {
			split = append(split, t)
		}
	}
	if len(split) == 0 {
		return nil
	}
	// VACUUM marks a page all-visible only if it may set its rows' commit
	// hint bits, which waits until the commit is flushed; the fill commits
	// asynchronously, and a commit's flush point is shared with the later
	// ones of its xid group. A checkpoint flushes them all (and writes only
	// what endFill's would).
	if _, err := r.tgtConn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint before freeze: %w", err)
	}
	// Up to sync.parallel at once, each in its own session, largest first.
	slots := make(chan struct{}, r.parallel)
	errs := make([]error, len(split))
	var wg sync.WaitGroup
	for i, t := range split {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			complete, err := r.freeze(ctx, t)
			if err == nil && !complete {
				r.log.Warn().Str(logkey.Table, t.schema+"."+t.name).Msg("split table not wholly frozen: a branch's first vacuum of it will rewrite pages")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// freeze vacuums t with FREEZE in a session of its own and reports whether
// every page came out all-visible.
func (r *run) freeze(ctx context.Context, t *table) (complete bool, err error) {
	begin := time.Now()
	conn, err := pgx.Connect(ctx, r.tgt.ConnString)
	if err != nil {
		return false, fmt.Errorf("connect to target: %w", err)
	}
	defer conn.Close(context.Background())
	// A few pages can come out of the first pass unmarked (seen once in CI
	// at 8 of 224, cause not found): another checkpoint and pass, which
	// visits only those, mark them.
	var visible, pages int64
	for try := 0; try < 3; try++ {
		if try > 0 {
			if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
				return false, fmt.Errorf("freeze %s: %w", t.qname, err)
			}
		}
		if _, err := conn.Exec(ctx, "VACUUM (FREEZE, INDEX_CLEANUP OFF) "+t.qname); err != nil {
			return false, fmt.Errorf("freeze %s: %w", t.qname, err)
		}
		err = conn.QueryRow(ctx, "SELECT relallvisible::int8, relpages::int8 FROM pg_catalog.pg_class WHERE oid = $1::regclass", t.qname).Scan(&visible, &pages)
		if err != nil {
			return false, fmt.Errorf("freeze %s: %w", t.qname, err)
		}
		if visible >= pages {
			break
		}
	}
	r.log.Debug().Str(logkey.Table, t.schema+"."+t.name).Int64("pages", pages).Int64("all_visible", visible).
		Dur(logkey.Duration, time.Since(begin)).Msg("split table frozen")
	return visible >= pages, nil
}
