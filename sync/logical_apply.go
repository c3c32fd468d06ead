package twinsync

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// maxQueued bounds the statements sent in one round trip; their results are
// small, so the server never blocks writing them while we still write.
const maxQueued = 1000

// applier writes masked changes into the twin over one connection: each
// group of source transactions in one target transaction, statements
// prepared once per relation, kind and column set, and pipelined.
type applier struct {
	conn   *pgconn.PgConn
	log    zerolog.Logger
	stmts  map[string]string
	nstmt  int
	tables map[string]*twinTable // by quoted name

	open bool // a target transaction is open
	// Changes wait here per table, as long as that table sees only
	// changes of one kind (inserts: of one column set): many inserts go in
	// as one COPY, many updates or deletes by key as one statement
	// (logical_apply_set.go), a few as prepared statements each. Tables
	// are independent in the twin (the replica role fires no trigger and
	// checks no foreign key), so only each table's own order is kept.
	runs    map[string]*applyRun
	pending int // rows in runs
	copyBuf []byte
	batch   pgconn.Batch
	queued  []queuedStmt
	missing int64 // updates and deletes that found no row
	tm      *applyTimer

	// A group's commit in the background (logical_apply_async.go).
	rec    *applyJob // flushes are being recorded into it
	job    *applyJob // in flight
	jobErr error
}

type applyRun struct {
	kind byte   // 'I', 'U', 'D'
	key  string // relation version, kind (and for inserts column set)
	rows []*change
	tt   *twinTable
	at   map[string]int // updates and deletes: row index by key values
}

type queuedStmt struct {
	want  int64 // rows it must find (updates and deletes), 0: no check
	table string
}

// twinTable is what the apply needs to know of a twin table.
type twinTable struct {
	cols map[string]bool // existing columns
	noEq map[string]bool // columns whose type has no equality: compared as text
	// always are GENERATED ALWAYS AS IDENTITY columns: an UPDATE cannot set
	// them, and on the source none could have changed them.
	always map[string]bool
	typ    map[string]string // type name without modifier (bpchar, not character(1)), for casts from text
	// What set-based apply must not cross (logical_apply_set.go).
	uniq     map[string]bool // columns of a unique or exclusion index
	uniqAll  bool            // such an index has an expression or predicate
	rowByRow bool            // triggers fire or rules rewrite: row by row only
}

func newApplier(conn *pgconn.PgConn, log zerolog.Logger) *applier {
	return &applier{conn: conn, log: log, stmts: map[string]string{}, tables: map[string]*twinTable{}, tm: &applyTimer{}}
}

// targetConfig is the apply session: replica role so the twin's triggers
// and foreign keys stay quiet (the source already ran them), durable
// commits (acks depend on them), value formats as the source sends, and
// search_path pg_catalog as on the source sessions, so format_type spells
// a type alike on both sides (schema changes compare them). Generic plans
// from the first execution: a set-based statement's custom plan, costed
// for its few rows, would otherwise be planned again at every execution,
// and apply statements find rows by key, which a generic plan does as well.
func targetConfig(connString string) (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	for k, v := range map[string]string{
		"session_replication_role":            "replica",
		"search_path":                         "pg_catalog",
		"synchronous_commit":                  "on",
		"plan_cache_mode":                     "force_generic_plan",
		"statement_timeout":                   "0",
		"lock_timeout":                        "0",
		"idle_in_transaction_session_timeout": "0",
		"DateStyle":                           "ISO",
		"IntervalStyle":                       "postgres",
		"application_name":                    "pgtwin apply",
	} {
		cfg.RuntimeParams[k] = v
	}
	return cfg, nil
}

func (a *applier) exec(ctx context.Context, sql string) error {
	if err := a.wait(); err != nil {
		return err
	}
	defer a.tm.since(&a.tm.twin, a.tm.now())
	_, err := a.conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return fmt.Errorf("target: %w", redact(err))
	}
	return nil
}

func (a *applier) begin(ctx context.Context) error {
	if a.open {
		return nil
	}
	if err := a.exec(ctx, "BEGIN"); err != nil {
		return err
	}
	a.open = true
	return nil
}

// copyMin is the run of inserts from which COPY beats pipelined INSERTs.
const copyMin = 16

// flush sends the waiting inserts and the queued statements, in order.
func (a *applier) flush(ctx context.Context) error {
	if a.rec == nil {
		if err := a.wait(); err != nil {
			return err
		}
	}
	if err := a.flushRuns(ctx); err != nil {
		return err
	}
	return a.flushBatch(ctx)
}

func (a *applier) flushRuns(ctx context.Context) error {
	for qname := range a.runs {
		if err := a.flushRun(ctx, qname); err != nil {
			return err
		}
	}
	return nil
}

// flushRun sends the waiting changes of one table.
func (a *applier) flushRun(ctx context.Context, qname string) error {
	r := a.runs[qname]
	if r == nil {
		return nil
	}
	delete(a.runs, qname)
	a.pending -= len(r.rows)
	if r.kind != 'I' {
		return a.flushSet(ctx, r)
	}
	ins := r.rows
	if len(ins) < copyMin {
		for _, c := range ins {
			if err := a.insert(ctx, c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := a.flushBatch(ctx); err != nil {
		return err
	}
	rs := ins[0].rs
	var names []string
	for i, v := range ins[0].newT {
		if v.Kind != pgoutput.TupleUnchanged {
			names = append(names, pgx.Identifier{rs.rel.Columns[i].Name}.Sanitize())
		}
	}
	buf := a.copyBuf[:0]
	for _, c := range ins {
		first := true
		for _, v := range c.newT {
			if v.Kind == pgoutput.TupleUnchanged {
				continue
			}
			if !first {
				buf = append(buf, '\t')
			}
			first = false
			if v.Kind == pgoutput.TupleNull {
				buf = append(buf, '\\', 'N')
			} else {
				buf = anonymize.EncodeCopyField(buf, v.Data)
			}
		}
		buf = append(buf, '\n')
	}
	a.copyBuf = buf
	sql := "COPY " + rs.qname + " (" + strings.Join(names, ", ") + ") FROM STDIN"
	if a.rec != nil {
		// The job owns the buffer now.
		a.rec.steps = append(a.rec.steps, applyStep{copySQL: sql, copyData: buf})
		a.copyBuf = nil
		return nil
	}
	if err := a.wait(); err != nil {
		return err
	}
	defer a.tm.since(&a.tm.twin, a.tm.now())
	if _, err := a.conn.CopyFrom(ctx, bytes.NewReader(buf), sql); err != nil {
		return fmt.Errorf("apply: %w", redact(err))
	}
	if cap(a.copyBuf) > 16<<20 {
		a.copyBuf = nil
	}
	return nil
}

// flushBatch sends the queued statements.
func (a *applier) flushBatch(ctx context.Context) error {
	if len(a.queued) == 0 {
		return nil
	}
	if a.rec != nil {
		b := a.batch
		a.rec.steps = append(a.rec.steps, applyStep{batch: &b, queued: a.queued})
		a.batch, a.queued = pgconn.Batch{}, nil
		return nil
	}
	if err := a.wait(); err != nil {
		return err
	}
	at := a.tm.now()
	n, err := a.execBatch(ctx, &a.batch, a.queued)
	a.tm.since(&a.tm.twin, at)
	a.batch, a.queued = pgconn.Batch{}, a.queued[:0]
	a.missing += n
	return err
}

// commit makes the open transaction durable with lsn as the progress.
func (a *applier) commit(ctx context.Context, slot string, lsn pgoutput.LSN) error {
	if !a.open {
		return nil
	}
	name, err := a.prepare(ctx, "progress", progressUpsert)
	if err != nil {
		return err
	}
	a.batch.ExecPrepared(name, [][]byte{[]byte(slot), []byte(lsn.String())}, nil, nil)
	a.queued = append(a.queued, queuedStmt{})
	if err := a.flush(ctx); err != nil {
		return err
	}
	if err := a.exec(ctx, "COMMIT"); err != nil {
		return err
	}
	a.open = false
	return nil
}

// recordCommit records the open group's changes, the progress and COMMIT
// as a job for submit (logical_apply_async.go); with next, the job ends
// with the next group's BEGIN, and that group is open.
func (a *applier) recordCommit(ctx context.Context, slot string, lsn pgoutput.LSN, next bool) error {
	if !a.open {
		return nil
	}
	name, err := a.prepare(ctx, "progress", progressUpsert)
	if err != nil {
		return err
	}
	a.record()
	// The statements the runs leave queued go in one batch with the
	// progress and COMMIT.
	if err := a.flushRuns(ctx); err != nil {
		a.rec = nil
		return err
	}
	a.batch.ExecPrepared(name, [][]byte{[]byte(slot), []byte(lsn.String())}, nil, nil)
	a.batch.ExecParams("COMMIT", nil, nil, nil, nil)
	a.queued = append(a.queued, queuedStmt{}, queuedStmt{})
	if next {
		a.batch.ExecParams("BEGIN", nil, nil, nil, nil)
		a.queued = append(a.queued, queuedStmt{})
	}
	if err := a.flushBatch(ctx); err != nil {
		a.rec = nil
		return err
	}
	a.open = next
	return nil
}

func (a *applier) rollback(ctx context.Context) {
	a.wait()
	a.rec = nil
	a.batch, a.queued = pgconn.Batch{}, a.queued[:0]
	a.runs, a.pending = nil, 0
	if a.open {
		a.exec(ctx, "ROLLBACK")
		a.open = false
	}
	a.tables = map[string]*twinTable{} // an ADD COLUMN may have been undone
}

func (a *applier) queue(ctx context.Context, stmt string, params [][]byte, formats []int16, want int64, table string) error {
	if err := a.flushRun(ctx, table); err != nil {
		return err
	}
	a.batch.ExecPrepared(stmt, params, formats, nil)
	a.queued = append(a.queued, queuedStmt{want: want, table: table})
	if len(a.queued) >= maxQueued {
		return a.flush(ctx)
	}
	return nil
}

// prepare returns the statement's name, preparing it the first time.
func (a *applier) prepare(ctx context.Context, key, sql string) (string, error) {
	if name, ok := a.stmts[key]; ok {
		return name, nil
	}
	// Statements already queued go first: they may need the table as it
	// is, and Prepare is its own round trip.
	if err := a.flush(ctx); err != nil {
		return "", err
	}
	if err := a.wait(); err != nil {
		return "", err
	}
	a.nstmt++
	name := "pgtwin_" + strconv.Itoa(a.nstmt)
	if _, err := a.conn.Prepare(ctx, name, sql, nil); err != nil {
		return "", fmt.Errorf("prepare apply statement: %w", redact(err))
	}
	a.stmts[key] = name
	return name, nil
}

// table loads what the apply needs to know of a twin table. The session's
// reconcile has given it the columns rs describes.
func (a *applier) table(ctx context.Context, rs *relState) (*twinTable, error) {
	tt := a.tables[rs.qname]
	if tt == nil || !tt.hasAll(rs) {
		var err error
		if tt, err = a.loadTable(ctx, rs.qname); err != nil {
			return nil, err
		}
		for _, c := range rs.rel.Columns {
			if !tt.cols[c.Name] {
				return nil, fmt.Errorf("table %s in the twin has no column %s: %w", rs.qname, c.Name, errNeedsResync)
			}
		}
		a.tables[rs.qname] = tt
	}
	return tt, nil
}

func (tt *twinTable) hasAll(rs *relState) bool {
	for _, c := range rs.rel.Columns {
		if !tt.cols[c.Name] {
			return false
		}
	}
	return true
}

func (a *applier) loadTable(ctx context.Context, qname string) (*twinTable, error) {
	if err := a.flush(ctx); err != nil {
		return nil, err
	}
	// A type without an "=" of its own (json, point, xml; arrays of them)
	// cannot be compared for REPLICA IDENTITY FULL: compare its text.
	sql := `SELECT a.attname, NOT EXISTS (SELECT 1 FROM pg_catalog.pg_operator o
			WHERE o.oprname = '=' AND o.oprleft = o.oprright
			AND o.oprleft = coalesce(nullif(t.typelem, 0), nullif(t.typbasetype, 0), t.oid)),
			a.attidentity = 'a', pg_catalog.format_type(a.atttypid, -1)
		FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = ` + quoteLiteral(qname) + `::regclass AND a.attnum > 0 AND NOT a.attisdropped`
	res, err := a.conn.Exec(ctx, sql+"; "+setLimitsSQL(qname)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("twin table %s: %w", qname, redact(err))
	}
	tt := &twinTable{cols: map[string]bool{}, noEq: map[string]bool{}, always: map[string]bool{}, typ: map[string]string{}}
	for _, row := range res[0].Rows {
		tt.cols[string(row[0])] = true
		tt.noEq[string(row[0])] = string(row[1]) == "t"
		tt.always[string(row[0])] = string(row[2]) == "t"
		tt.typ[string(row[0])] = string(row[3])
	}
	tt.readSetLimits(res[1].Rows)
	if len(tt.cols) == 0 {
		return nil, fmt.Errorf("table %s is not in the twin: %w", qname, errNeedsResync)
	}
	return tt, nil
}

// apply queues one masked change.
func (a *applier) apply(ctx context.Context, c *change) error {
	if c.kind == 'T' {
		return a.truncate(ctx, c)
	}
	rs := c.rs
	tt, err := a.table(ctx, rs)
	if err != nil {
		return err
	}
	if c.kind == 'I' {
		var key strings.Builder
		key.WriteString(strconv.FormatUint(rs.ver, 10))
		key.WriteString("I/")
		for i, v := range c.newT {
			if v.Kind != pgoutput.TupleUnchanged {
				key.WriteString(strconv.Itoa(i))
				key.WriteByte(',')
			}
		}
		r, err := a.runFor(ctx, rs.qname, key.String(), c.kind, tt)
		if err != nil {
			return err
		}
		r.rows = append(r.rows, c)
		return a.added(ctx)
	}
	if k := setKey(c, tt); k != "" {
		return a.addSet(ctx, c, tt, k)
	}
	return a.changeRow(ctx, c, tt)
}

// runFor returns the run of table qname with key k, sending a waiting run
// of another key first.
func (a *applier) runFor(ctx context.Context, qname, k string, kind byte, tt *twinTable) (*applyRun, error) {
	r := a.runs[qname]
	if r != nil && r.key != k {
		if err := a.flushRun(ctx, qname); err != nil {
			return nil, err
		}
		r = nil
	}
	if r == nil {
		if a.runs == nil {
			a.runs = map[string]*applyRun{}
		}
		r = &applyRun{kind: kind, key: k, tt: tt}
		a.runs[qname] = r
	}
	return r, nil
}

// added counts a row added to a run and bounds what waits.
func (a *applier) added(ctx context.Context) error {
	if a.pending++; a.pending >= maxQueued*5 {
		return a.flushRuns(ctx)
	}
	return nil
}

// changeRow queues an update or delete as a statement of its own.
func (a *applier) changeRow(ctx context.Context, c *change, tt *twinTable) error {
	var key strings.Builder
	key.WriteString(strconv.FormatUint(c.rs.ver, 10))
	key.WriteByte(c.kind)
	return a.change(ctx, c, tt, &key)
}

// insert queues one prepared INSERT.
func (a *applier) insert(ctx context.Context, c *change) error {
	rs := c.rs
	cols := rs.rel.Columns
	var key strings.Builder
	var params [][]byte
	key.WriteString(strconv.FormatUint(rs.ver, 10))
	key.WriteByte('I')
	{
		var names, vals []string
		for i, v := range c.newT {
			if v.Kind == pgoutput.TupleUnchanged {
				continue
			}
			key.WriteString(strconv.Itoa(i))
			key.WriteByte(',')
			names = append(names, pgx.Identifier{cols[i].Name}.Sanitize())
			params = append(params, value(v))
			vals = append(vals, "$"+strconv.Itoa(len(params)))
		}
		sql := "INSERT INTO " + rs.qname + " (" + strings.Join(names, ", ") + ") OVERRIDING SYSTEM VALUE VALUES (" + strings.Join(vals, ", ") + ")"
		name, err := a.prepare(ctx, key.String(), sql)
		if err != nil {
			return err
		}
		a.batch.ExecPrepared(name, params, nil, nil)
		a.queued = append(a.queued, queuedStmt{table: rs.qname})
		if len(a.queued) >= maxQueued {
			return a.flushBatch(ctx)
		}
		return nil
	}
}

// change queues an update or delete.
func (a *applier) change(ctx context.Context, c *change, tt *twinTable, key *strings.Builder) error {
	rs := c.rs
	cols := rs.rel.Columns
	var params [][]byte
	switch c.kind {
	case 'U':
		var sets []string
		for i, v := range c.newT {
			if v.Kind == pgoutput.TupleUnchanged || tt.always[cols[i].Name] {
				continue // unchanged TOAST: leave it, never NULL it
			}
			key.WriteString(strconv.Itoa(i))
			key.WriteByte(',')
			params = append(params, value(v))
			sets = append(sets, pgx.Identifier{cols[i].Name}.Sanitize()+" = $"+strconv.Itoa(len(params)))
		}
		if len(sets) == 0 {
			return nil
		}
		key.WriteByte('|')
		where, params, err := a.where(rs, tt, c, params, key)
		if err != nil {
			return err
		}
		sql := "UPDATE " + rs.qname + " SET " + strings.Join(sets, ", ") + " WHERE " + where
		name, err := a.prepare(ctx, key.String(), sql)
		if err != nil {
			return err
		}
		return a.queue(ctx, name, params, nil, 1, rs.qname)
	case 'D':
		where, params, err := a.where(rs, tt, c, nil, key)
		if err != nil {
			return err
		}
		name, err := a.prepare(ctx, key.String(), "DELETE FROM "+rs.qname+" WHERE "+where)
		if err != nil {
			return err
		}
		return a.queue(ctx, name, params, nil, 1, rs.qname)
	}
	return fmt.Errorf("apply: unknown change kind %q", c.kind)
}

// where identifies the row an update or delete changes: the old key (or
// the new tuple's key columns when the key did not change), or for
// REPLICA IDENTITY FULL the whole old row, one physical row of it.
func (a *applier) where(rs *relState, tt *twinTable, c *change, params [][]byte, key *strings.Builder) (string, [][]byte, error) {
	cols := rs.rel.Columns
	tup, full := c.oldT, c.oldType == pgoutput.OldTupleFull
	if c.oldType == 0 {
		tup = c.newT
	}
	var conds []string
	for i, v := range tup {
		if !full && !cols[i].IsKey() || v.Kind == pgoutput.TupleUnchanged || i >= len(cols) {
			continue
		}
		key.WriteString(strconv.Itoa(i))
		col := pgx.Identifier{cols[i].Name}.Sanitize()
		if v.Kind == pgoutput.TupleNull {
			key.WriteByte('n')
			conds = append(conds, col+" IS NULL")
			continue
		}
		key.WriteByte(',')
		params = append(params, value(v))
		p := "$" + strconv.Itoa(len(params))
		// "=" even for REPLICA IDENTITY FULL (NULLs took the branch
		// above): IS NOT DISTINCT FROM means the same for non-null values
		// but no index can serve it, so every change was a full scan.
		if tt.noEq[cols[i].Name] {
			conds = append(conds, col+"::text = "+p+"::text")
		} else {
			conds = append(conds, col+" = "+p)
		}
	}
	if len(conds) == 0 {
		return "", nil, fmt.Errorf("table %s: change without a replica identity (REPLICA IDENTITY NOTHING, or no primary key): on the source, add a primary key or ALTER TABLE %s REPLICA IDENTITY FULL, then resync: %w",
			rs.qname, rs.qname, errNeedsResync)
	}
	w := strings.Join(conds, " AND ")
	if full {
		// Duplicate rows are possible without a key; change one, as the source did.
		w = "ctid = (SELECT ctid FROM " + rs.qname + " WHERE " + w + " LIMIT 1)"
	}
	return w, params, nil
}

func (a *applier) truncate(ctx context.Context, c *change) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	sql := "TRUNCATE " + strings.Join(c.truncRels, ", ")
	if c.truncOpts&pgoutput.TruncateRestartIdentity != 0 {
		sql += " RESTART IDENTITY"
	}
	sql += " CASCADE"
	return a.exec(ctx, sql)
}

func value(v pgoutput.TupleColumn) []byte {
	if v.Kind == pgoutput.TupleNull {
		return nil
	}
	if v.Data == nil {
		return []byte{}
	}
	return v.Data
}
