package twinsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// defaultOwner is the NOLOGIN role the twin creates to own main's objects.
const defaultOwner = "pgtwin_owner"

// dumper runs dump-mode syncs: schema by pg_dump, data by parallel COPY
// streams in one exported snapshot, every row through the masker on the way.
// Its fields are the config's [source] and [sync] sections; set them before
// the first Run and leave them alone while one runs.
type dumper struct {
	Source    source
	Parallel  int // sync.parallel; default 4
	Selection selection

	// Plan checks the masking plan against the source (sampling through the
	// connection it is given if it wants) and returns the masker for this
	// run. An error stops the run before the twin gets a single row. It is
	// required: there is no unmasked sync.
	Plan func(ctx context.Context, source *pgx.Conn) (masker, error)

	Backoff backoff // source connection retries; zero: DefaultBackoff
	Log     zerolog.Logger
	// TempDir holds the schema-only archive (DDL, never rows) during a run;
	// default os.TempDir().
	TempDir string
}

// target is the fresh, empty main the run fills: twin.ReplaceMain's instance.
type target struct {
	// ConnString reaches the target database as a superuser (libpq URL or
	// keyword/value; pg_restore gets it too).
	ConnString string
	// Owner is the role that owns every restored object; default DefaultOwner.
	Owner string
	// BinDir holds pg_dump and pg_restore; default FindBinDir().
	BinDir string
}

// stepError is a failed run: the step it failed in and why.
type stepError struct {
	Step string
	Err  error
}

func (e *stepError) Error() string { return "sync step " + e.Step + ": " + e.Err.Error() }
func (e *stepError) Unwrap() error { return e.Err }

// selection is which tables a sync copies: config sync.include_schemas and
// sync.exclude_tables.
//
// Excluded tables keep their definition in the twin (applications expect
// them to exist) but get no rows.
type selection struct {
	// IncludeSchemas are exact schema names; empty means every non-system
	// schema.
	IncludeSchemas []string
	// ExcludeTables are "schema.table" or "table" (any schema); both parts
	// may use shell globs (path.Match).
	ExcludeTables []string
	// LargeObjects is sync.large_objects: "skip" (also when empty), "empty"
	// or "copy".
	LargeObjects string
	// Subset is [sync.subset] and its companions (dump mode); zero: every row.
	Subset subsetSpec
	// outside are the tables (schema+"\x00"+table) that a configured
	// publication leaves out: logical mode syncs no rows of them.
	outside map[string]bool
}

// IncludesSchema reports whether tables of schema are synced.
func (s selection) IncludesSchema(schema string) bool {
	if len(s.IncludeSchemas) == 0 {
		return true
	}
	for _, n := range s.IncludeSchemas {
		if n == schema {
			return true
		}
	}
	return false
}

// Includes reports whether the rows of schema.table are synced.
func (s selection) Includes(schema, table string) bool {
	if !s.IncludesSchema(schema) || s.outside[schema+"\x00"+table] {
		return false
	}
	for _, pat := range s.ExcludeTables {
		ps, pt, qualified := cutLast(pat)
		if !qualified {
			pt = pat
		}
		if (!qualified || match(ps, schema)) && match(pt, table) {
			return false
		}
	}
	return true
}

func cutLast(s string) (before, after string, ok bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return "", s, false
}

func match(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return ok || (err != nil && pattern == name)
}

// syncRun copies the source into the target and returns nil when the target is
// a complete, masked, analyzed twin. On error the target is half-built and
// must be thrown away (twin.ReplaceMain does). p, if not nil, is kept up to
// date for status readers.
func (d *dumper) Run(ctx context.Context, tgt target, p *progress) (err error) {
	if p == nil {
		p = &progress{}
	}
	if tgt.Owner == "" {
		tgt.Owner = defaultOwner
	}
	parallel := d.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	start := time.Now()
	p.begin(start)
	log := d.Log.With().Str(logkey.Component, "sync").Logger()
	r := &run{d: d, tgt: tgt, p: p, log: log, parallel: parallel}
	defer r.close()

	step := stepConnect
	defer func() {
		if err != nil {
			err = &stepError{Step: step, Err: err}
			if ctx.Err() == nil {
				log.Error().Err(err).Str(logkey.Step, step).Msg("dump sync failed")
			}
		}
	}()
	if d.Plan == nil {
		return errors.New("no masking plan: refusing to copy unmasked rows")
	}
	if err := r.connect(ctx); err != nil {
		return err
	}

	step = stepPlan
	p.setStep(step)
	masker, err := d.Plan(ctx, r.src)
	if err != nil {
		return fmt.Errorf("masking plan: %w", err)
	}
	if masker == nil {
		return errors.New("masking plan returned no masker")
	}

	step = stepSchema
	p.setStep(step)
	if err := r.exportSnapshot(ctx); err != nil {
		return err
	}
	if err := r.fill(ctx, masker, &step); err != nil {
		return err
	}
	p.setStep(stepDone)
	st := p.Stats()
	log.Info().Int(logkey.Tables, st.TablesTotal).Int64(logkey.Rows, st.Rows).Int64(logkey.Bytes, st.Bytes).
		Dur(logkey.Duration, time.Since(start)).Msg("dump sync finished")
	return nil
}

// run is one Run's state.
type run struct {
	d   *dumper
	tgt target
	p   *progress
	log zerolog.Logger

	parallel   int
	binDir     string
	srcVersion int
	// binaryCopy: the servers share major version and encoding, so tables
	// with nothing to mask may be copied in COPY binary (copy_binary.go).
	binaryCopy bool
	src        *pgx.Conn // plain session: plan, sequences
	tgtConn    *pgx.Conn // superuser on the target
	coord      *coordinator
	dir        string // temp dir for the schema archive
	archive    string
	filling    map[string]string // fill settings in force on the target
	wb         *writeback        // nil: endFill's syncfs writes everything
}

// fill runs the steps dump and logical mode share once the source snapshot
// is in place: schema, masked copy (each table's indexes built and the
// table analyzed as soon as it is copied, while others still copy),
// post-data, sequences, ANALYZE of the rest. *step follows along so a
// failure names where it happened.
func (r *run) fill(ctx context.Context, masker masker, step *string) error {
	next := func(s string) { *step = s; r.p.setStep(s) }
	last := time.Now()
	lap := func(what string) {
		now := time.Now()
		r.log.Debug().Str(logkey.Step, what).Dur(logkey.Duration, now.Sub(last)).Msg("fill step done")
		last = now
	}
	tables, err := r.listTables(ctx, masker)
	if err != nil {
		return err
	}
	sub, err := r.startSubset(ctx, r.d.Selection.Subset, tables)
	if err != nil {
		return err
	}
	defer sub.close()
	if err := r.dumpSchema(ctx); err != nil {
		return err
	}
	early, err := r.planEarlyIndexes(ctx, tables)
	if err != nil {
		return err
	}
	lap("schema dump")
	if err := r.beginFill(ctx); err != nil {
		return err
	}
	r.wb = r.startWriteback(ctx)
	if err := r.restorePreData(ctx); err != nil {
		return err
	}
	lap("pre-data")

	next(stepCopy)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ix := r.startIndexer(cctx, early, len(tables), cancel)
	err = r.copyAll(cctx, sub.whole(tables), ix.copied)
	if err == nil {
		err = sub.copy(cctx, r, ix.copied)
	}
	lap("copy")
	if err != nil {
		cancel()
	}
	ierr := ix.wait()
	switch {
	case err == nil:
		err = ierr
	case ierr != nil && !errors.Is(ierr, context.Canceled) && errors.Is(err, context.Canceled):
		err = ierr // the index builds failed first and stopped the copy
	}
	if err != nil {
		return err
	}
	lap("indexes built after the last copy")
	next(stepPostData)
	if err := r.restorePostData(ctx, early.ids); err != nil {
		return err
	}
	lap("post-data")
	next(stepSequences)
	if err := r.syncSequences(ctx); err != nil {
		return err
	}
	lap("sequences")
	next(stepAnalyze)
	if err := r.analyzeRest(ctx, ix.analyzed); err != nil {
		return err
	}
	lap("analyze")
	if err := r.freezeSplit(ctx, tables); err != nil {
		return err
	}
	lap("freeze split tables")
	if err := r.endFill(ctx); err != nil {
		return err
	}
	lap("checkpoint and sync")
	return nil
}

func (r *run) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r.coord != nil {
		r.coord.release()
	}
	if r.src != nil {
		r.src.Close(ctx)
	}
	if r.tgtConn != nil {
		r.tgtConn.Close(ctx)
	}
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}

// connect reaches source and target and checks the tools can bridge their
// versions.
func (r *run) connect(ctx context.Context) error {
	r.binDir = r.tgt.BinDir
	if r.binDir == "" {
		d, err := findBinDir()
		if err != nil {
			return err
		}
		r.binDir = d
	}
	src, err := r.d.connectSource(ctx)
	if err != nil {
		return err
	}
	r.src = src
	if r.srcVersion, err = serverMajor(ctx, src); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if err := checkDumpVersion(ctx, r.binDir, r.srcVersion); err != nil {
		return err
	}
	if err := checkReadAccess(ctx, src, r.d.Selection); err != nil {
		return err
	}
	tc, err := pgx.Connect(ctx, r.tgt.ConnString)
	if err != nil {
		return fmt.Errorf("connect to target: %w", err)
	}
	r.tgtConn = tc
	tv, err := serverMajor(ctx, tc)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if majorOf(tv) < majorOf(r.srcVersion) {
		return fmt.Errorf("the twin runs PostgreSQL %d, older than the source's %d: install postgresql-%d and point engine.postgres_bin at it",
			majorOf(tv), majorOf(r.srcVersion), majorOf(r.srcVersion))
	}
	enc := func(c *pgx.Conn) string { return c.PgConn().ParameterStatus("server_encoding") }
	r.binaryCopy = majorOf(tv) == majorOf(r.srcVersion) && enc(src) != "" && enc(src) == enc(tc)
	r.log.Info().Int(logkey.SourceVersion, r.srcVersion).Int(logkey.TargetVersion, tv).Bool(logkey.Binary, r.binaryCopy).
		Msg("connected to source and target")
	return nil
}
