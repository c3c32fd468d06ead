package twinsync

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// Post-data is mostly index builds, and an index needs only its own table's
// rows: each copied table's indexes and PRIMARY KEY/UNIQUE/EXCLUDE
// constraints are built (and the table analyzed) as soon as its COPY
// commits, while other tables still copy. What spans tables or must see
// them all (foreign keys, triggers, rules, policies, indexes of partitioned
// parents and their ATTACH entries, comments) waits for the final
// post-data restore, as pg_restore orders it.

// earlyIndexPages is the size (source relpages) from which a table's
// indexes are built early: below 32 MB they take less time to build than a
// pg_restore of their own takes to start, and go with the final restore.
var earlyIndexPages int64 = 4096 // a var: tests take every table early

// Catalog OIDs of the TOC entries that can be built early.
const (
	pgClassOID      = 1259 // INDEX entries: (pg_class, indexrelid)
	pgConstraintOID = 2606 // CONSTRAINT entries: (pg_constraint, oid)
)

// tocRef is a TOC line's dump id and catalog identity.
type tocRef struct {
	id            int
	tableoid, oid uint32
}

// parseTOCRef reads "ID; TABLEOID OID DESC ...".
func parseTOCRef(line string) (tocRef, bool) {
	id, rest, ok := strings.Cut(line, "; ")
	if !ok {
		return tocRef{}, false
	}
	f := strings.SplitN(rest, " ", 3)
	if len(f) < 3 {
		return tocRef{}, false
	}
	n, err1 := strconv.Atoi(id)
	to, err2 := strconv.ParseUint(f[0], 10, 32)
	o, err3 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return tocRef{}, false
	}
	return tocRef{id: n, tableoid: uint32(to), oid: uint32(o)}, true
}

// earlyIndexes are the post-data TOC lines of each copied table that are
// restored as soon as the table is copied.
type earlyIndexes struct {
	byTable map[uint32][]string // source table oid → TOC lines
	ids     map[int]bool        // their dump ids, left out of the final restore
}

// planEarlyIndexes maps the archive's INDEX and CONSTRAINT entries to the
// copied tables of earlyIndexPages or more they belong to, reading the catalog in the snapshot the
// archive was dumped in. Unlogged tables are included: their indexes are
// built the same way.
func (r *run) planEarlyIndexes(ctx context.Context, tables []*table) (*earlyIndexes, error) {
	e := &earlyIndexes{byTable: map[uint32][]string{}, ids: map[int]bool{}}
	copied := map[uint32]bool{}
	for _, t := range tables {
		if t.pages >= earlyIndexPages {
			copied[t.oid] = true
		}
	}
	rows, err := r.coord.conn.Query(ctx, `SELECT 'pg_catalog.pg_class'::regclass::oid, i.indexrelid, i.indrelid
		FROM pg_catalog.pg_index i
		UNION ALL SELECT 'pg_catalog.pg_constraint'::regclass::oid, c.oid, c.conrelid
		FROM pg_catalog.pg_constraint c WHERE c.contype IN ('p', 'u', 'x') AND c.conrelid <> 0`)
	if err != nil {
		return nil, fmt.Errorf("list source indexes: %w", redact(err))
	}
	owner := map[[2]uint32]uint32{}
	var cat, obj, rel uint32
	_, err = pgx.ForEachRow(rows, []any{&cat, &obj, &rel}, func() error {
		if copied[rel] {
			owner[[2]uint32{cat, obj}] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list source indexes: %w", redact(err))
	}
	out, err := toolOutput(ctx, filepath.Join(r.binDir, "pg_restore"), []string{"--list", r.archive}, "pg_restore --list")
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		ref, ok := parseTOCRef(line)
		if !ok {
			continue
		}
		te, _ := parseTOC(line)
		if !(te.desc == "INDEX" && ref.tableoid == pgClassOID || te.desc == "CONSTRAINT" && ref.tableoid == pgConstraintOID) {
			continue
		}
		if rel, ok := owner[[2]uint32{ref.tableoid, ref.oid}]; ok {
			e.byTable[rel] = append(e.byTable[rel], line)
			e.ids[ref.id] = true
		}
	}
	return e, nil
}

// indexer builds the early indexes of the tables the copy workers hand it:
// up to sync.parallel batches at once, each batch what has queued up while
// every slot was busy, restored by one pg_restore; then it analyzes those
// tables.
type indexer struct {
	r     *run
	fail  func() // stops the copy
	early *earlyIndexes
	queue chan *table
	done  chan error

	mu       sync.Mutex
	analyzed map[string]bool // qnames
	batches  int
}

func (r *run) startIndexer(ctx context.Context, early *earlyIndexes, n int, fail func()) *indexer {
	ix := &indexer{r: r, fail: fail, early: early, queue: make(chan *table, n), done: make(chan error, 1), analyzed: map[string]bool{}}
	go func() { ix.done <- ix.loop(ctx) }()
	return ix
}

// copied is called by a copy worker when t's COPY has committed; it never
// blocks (the queue holds every table).
func (ix *indexer) copied(t *table) { ix.queue <- t }

// wait ends the queue and returns the first error.
func (ix *indexer) wait() error {
	close(ix.queue)
	return <-ix.done
}

func (ix *indexer) loop(ctx context.Context) error {
	slots := make(chan struct{}, ix.r.parallel)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
	)
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failed != nil || ctx.Err() != nil
	}
	for t := range ix.queue {
		if stopped() {
			continue // drain so workers never block
		}
		slots <- struct{}{}
		batch := []*table{t}
	more:
		for {
			select {
			case t, ok := <-ix.queue:
				if !ok {
					break more
				}
				batch = append(batch, t)
			default:
				break more
			}
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := ix.build(ctx, batch); err != nil {
				mu.Lock()
				if failed == nil {
					failed = err
				}
				mu.Unlock()
				ix.fail()
			}
		})
	}
	wg.Wait()
	if failed == nil {
		failed = ctx.Err()
	}
	return failed
}

func (ix *indexer) build(ctx context.Context, batch []*table) error {
	var lines []string
	var names, big []string
	for _, t := range batch {
		lines = append(lines, ix.early.byTable[t.oid]...)
		names = append(names, t.schema+"."+t.name)
		if t.pages >= earlyIndexPages {
			big = append(big, t.qname)
		}
	}
	begin := time.Now()
	conn, err := pgx.Connect(ctx, ix.r.tgt.ConnString)
	if err != nil {
		return fmt.Errorf("connect to target: %w", err)
	}
	defer conn.Close(context.Background())
	// The heap is written no more: its writeback overlaps the index builds.
	ix.r.wb.tables(ctx, conn, big)
	if len(lines) > 0 {
		ix.mu.Lock()
		ix.batches++
		list := filepath.Join(ix.r.dir, fmt.Sprintf("early-%d.list", ix.batches))
		ix.mu.Unlock()
		if err := os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return fmt.Errorf("index list: %w", err)
		}
		jobs := min(len(lines), ix.r.parallel)
		if err := ix.r.restoreList(ctx, "post-data", list, jobs, "pg_restore indexes"); err != nil {
			return err
		}
	}
	built := time.Now()
	if len(lines) > 0 {
		ix.r.wb.tables(ctx, conn, big) // now the indexes
	}
	for _, t := range batch {
		if _, err := conn.Exec(ctx, "ANALYZE "+t.qname); err != nil {
			return fmt.Errorf("analyze %s: %w", t.qname, redact(err))
		}
		ix.mu.Lock()
		ix.analyzed[t.qname] = true
		ix.mu.Unlock()
	}
	ix.r.log.Debug().Strs("tables", names).Int("entries", len(lines)).Dur("index_duration", built.Sub(begin)).
		Dur(logkey.Duration, time.Since(begin)).Msg("indexes built and tables analyzed while others copy")
	return nil
}

// restoreList restores the entries of list with jobs parallel sessions, as
// the owner role. Its sessions get the fill's settings from ALTER SYSTEM
// (fillSettings): PGOPTIONS would not reach them, as a twin's connection
// string carries options of its own.
func (r *run) restoreList(ctx context.Context, section, list string, jobs int, what string) error {
	args := []string{"--section=" + section, "--use-list=" + list, "--no-owner", "--no-privileges",
		"--no-tablespaces", "--no-security-labels", "--role=" + r.tgt.Owner, "--exit-on-error",
		"--dbname=" + r.tgt.ConnString}
	if jobs > 1 {
		args = append(args, "--jobs="+strconv.Itoa(jobs))
	}
	args = append(args, r.archive)
	return runTool(ctx, filepath.Join(r.binDir, "pg_restore"), args, nil, what)
}

// analyzeRest analyzes what the indexer did not: partitioned and
// inheritance parents, materialized views, tables without rows synced.
func (r *run) analyzeRest(ctx context.Context, done map[string]bool) error {
	rows, err := r.tgtConn.Query(ctx, `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence <> 't'
			AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
		ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("list target tables: %w", redact(err))
	}
	var todo []string
	var schema, name string
	if _, err := pgx.ForEachRow(rows, []any{&schema, &name}, func() error {
		if q := (pgx.Identifier{schema, name}).Sanitize(); !done[q] {
			todo = append(todo, q)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list target tables: %w", redact(err))
	}
	for _, q := range todo {
		if _, err := r.tgtConn.Exec(ctx, "ANALYZE "+q); err != nil {
			return fmt.Errorf("analyze %s: %w", q, redact(err))
		}
	}
	return nil
}
