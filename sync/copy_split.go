package twinsync

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// A big table copied as one COPY stream is the fill's critical path while
// the other workers idle after the small tables. From splitPages (source
// relpages) on, a table is copied as ctid ranges by several workers at
// once, all in the same exported snapshot, so together they hold exactly
// the snapshot's rows. A ctid range is a TID Range Scan from PostgreSQL 14
// on; older sources would seqscan the table once per range, so they are
// not split.
var splitPages int64 = 4096 // 32 MB; a var: tests split small tables

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

// partPages is the number of pages of each part of t, or 0 when t is
// copied whole.
func (r *run) partPages(t *table) int64 {
	if r.parallel < 2 || r.srcVersion < splitMinVersion || t.pages < splitPages || t.remask == nil {
		return 0
	}
	return (t.pages + int64(r.parallel) - 1) / int64(r.parallel)
}

// planJobs turns the tables into COPY jobs: tables of splitPages or more
// into sync.parallel ctid ranges, the last one open-ended because relpages
// is an estimate and the table may have grown since it was taken. Jobs run
// largest first, so the biggest table's ranges start together and the
// small tables fill in at the end. Each extra part gets its own masker now,
// before any row moves.
func (r *run) planJobs(tables []*table) ([]*job, error) {
	var jobs []*job
	for _, t := range tables {
		per := r.partPages(t)
		if per == 0 {
			t.parts = 1
			jobs = append(jobs, &job{t: t, tr: &tableRun{parts: 1}, hi: -1, masker: t.masker})
			continue
		}
		t.parts = r.parallel
		tr := &tableRun{parts: r.parallel}
		for i := range r.parallel {
			j := &job{t: t, tr: tr, part: i, lo: int64(i) * per, hi: int64(i+1) * per, masker: t.masker}
			if i == r.parallel-1 {
				j.hi = -1
			}
			if i > 0 {
				m, err := t.remask()
				if err != nil {
					return nil, fmt.Errorf("masking plan for %s.%s: %w", t.schema, t.name, err)
				}
				j.masker = m
			}
			jobs = append(jobs, j)
		}
	}
	size := func(j *job) int64 { return j.t.pages / int64(j.tr.parts) }
	sort.SliceStable(jobs, func(a, b int) bool { return size(jobs[a]) > size(jobs[b]) })
	return jobs, nil
}

// copyOut is the COPY that reads the job's rows: the whole table, or its
// pages [lo, hi) through a TID Range Scan. ONLY, as COPY of a table itself
// reads no child's rows.
func (j *job) copyOut() string {
	if !j.split() {
		return j.t.copyOut()
	}
	cond := "ctid >= '(" + strconv.FormatInt(j.lo, 10) + ",0)'::pg_catalog.tid"
	if j.hi >= 0 {
		cond += " AND ctid < '(" + strconv.FormatInt(j.hi, 10) + ",0)'::pg_catalog.tid"
	}
	return "COPY (SELECT " + j.t.columnList() + " FROM ONLY " + j.t.qname + " WHERE " + cond + ") TO STDOUT"
}

// copyIn is the target's COPY: a whole table truncates first in its
// transaction and copies FREEZE; the parts of a split table share the
// empty table the pre-data restore created, each in its own transaction, so
// they cannot freeze (freezeSplit does, once nothing else runs).
func (j *job) copyIn() string {
	if !j.split() {
		return j.t.copyIn()
	}
	if len(j.t.columns) == 0 {
		return "COPY " + j.t.qname + " FROM STDIN"
	}
	return "COPY " + j.t.qname + " (" + j.t.columnList() + ") FROM STDIN"
}

// freezeSplit freezes the split tables once the fill's other sessions have
// ended: rows a COPY without FREEZE wrote are neither frozen nor marked
// all-visible, and a branch's first vacuum would rewrite every page of
// them (a full copy of the table on a copy-on-write branch). Earlier, a
// concurrent COPY's or index build's snapshot would hold the freeze back.
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
	for _, t := range split {
		begin := time.Now()
		if _, err := r.tgtConn.Exec(ctx, "VACUUM (FREEZE, INDEX_CLEANUP OFF) "+t.qname); err != nil {
			return fmt.Errorf("freeze %s: %w", t.qname, err)
		}
		r.log.Debug().Str(logkey.Table, t.schema+"."+t.name).Dur(logkey.Duration, time.Since(begin)).Msg("split table frozen")
	}
	return nil
}
