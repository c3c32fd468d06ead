package twinsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/twin/api"
)

// Main is the main twin as the sync needs it. The daemon fills it with a
// short adapter over package twin; the sync never sees branches.
type Main interface {
	// Replace builds a fresh, empty main beside the current one, its
	// database with locale loc (the source's), and calls fill with a
	// superuser connection string to that database. When fill
	// succeeds the new main is snapshotted and becomes main, and the
	// snapshot's id is returned; when it fails, nothing has changed (a fill
	// that ran the pool out of space fails with engine.ErrNoSpace).
	Replace(ctx context.Context, loc engine.DatabaseLocale, fill func(ctx context.Context, connString string) error) (snapshot string, err error)
	// ConnString is a superuser connection string to the current main's
	// database, started if it was not running.
	ConnString(ctx context.Context) (string, error)
	// Snapshot snapshots main as it is, recording the source LSN it
	// reflects, and returns the snapshot's id.
	Snapshot(ctx context.Context, sourceLSN string) (snapshot string, err error)
}

// Metrics is where the Syncer reports each finished run (dump) or snapshot
// (logical). Lag is read from Status at scrape time.
type Metrics interface {
	SyncFinished(d time.Duration, err error)
}

// Options are what New needs besides the config and main.
type Options struct {
	// BinDir holds pg_dump and pg_restore (the engine's PostgreSQL).
	BinDir  string
	Log     zerolog.Logger
	Metrics Metrics // optional
}

// maskBackoff keeps `mask plan` and `mask check` from hanging for minutes on
// an unreachable source: they answer a person waiting at a terminal.
var maskBackoff = backoff{Initial: 500 * time.Millisecond, Max: 2 * time.Second, Attempts: 3}

// Syncer is the daemon's sync behind one front door, in either mode: it
// answers the sync and mask endpoints of the socket API.
type Syncer struct {
	mode   string
	src    source
	sel    selection
	rules  anonymize.Rules
	policy string
	key    []byte
	log    zerolog.Logger

	dump    *service // dump mode
	logical *logicalSyncer
}

// ErrNoSource is returned by New when the config names no source.
var ErrNoSource = errors.New("no [source] url configured")

// New builds the sync that cfg describes. It reads (or creates) the masking
// key and parses the rules now, so a bad config stops the daemon at start
// rather than at 2 a.m. Nothing runs until Start.
func New(cfg config.Config, main Main, opts Options) (*Syncer, error) {
	if cfg.Source.URL == "" {
		return nil, ErrNoSource
	}
	if main == nil {
		return nil, errors.New("sync: no main twin")
	}
	rules, err := anonymize.ParseRules(cfg.Anonymize.Columns)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	key, err := anonymize.LoadOrCreateKey(cfg.Anonymize.KeyFile, opts.Log)
	if err != nil {
		return nil, fmt.Errorf("anonymize.key_file: %w", err)
	}
	subset, err := subsetFromConfig(cfg.Sync.Subset, cfg.Sync.SubsetSkipReferencing, cfg.Sync.SubsetForeignKeys)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if subset.enabled() && cfg.Sync.Mode == api.SyncModeLogical {
		// config.Validate says so too; logical mode's initial copy shares fill.
		return nil, errors.New("config: sync.subset works in dump mode only: logical mode follows every change of every row")
	}
	s := &Syncer{
		mode:   cfg.Sync.Mode,
		src:    source{URL: cfg.Source.URL, PasswordFile: cfg.Source.PasswordFile},
		sel:    selection{IncludeSchemas: cfg.Sync.IncludeSchemas, ExcludeTables: cfg.Sync.ExcludeTables, LargeObjects: cfg.Sync.LargeObjects, Subset: subset},
		rules:  rules,
		policy: cfg.Anonymize.OnUnclassifiedPII,
		key:    key,
		log:    opts.Log,
	}
	// Schema archives (DDL only) and logical mode's masked spill files.
	tmp := filepath.Join(cfg.Daemon.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("daemon.data_dir: %w", err)
	}
	finished := func(time.Duration, error) {}
	if opts.Metrics != nil {
		finished = opts.Metrics.SyncFinished
	}
	switch cfg.Sync.Mode {
	case "", "dump":
		s.mode = api.SyncModeDump
		svc, err := newService(serviceConfig{
			Source: s.src, Selection: s.sel, Parallel: cfg.Sync.Parallel, Schedule: cfg.Sync.Schedule,
			Rules: rules, Policy: s.policy, Key: key,
			Replace: func(ctx context.Context, fill func(context.Context, target) error) (string, error) {
				return replaceWithLocale(ctx, main, s.src, backoff{}, opts.Log, opts.BinDir, fill)
			},
			StateFile: filepath.Join(cfg.Daemon.DataDir, "state", "sync.json"),
			TempDir:   tmp,
			BinDir:    opts.BinDir,
			Log:       opts.Log,
			Finished:  finished,
		})
		if err != nil {
			return nil, err
		}
		s.dump = svc
	case api.SyncModeLogical:
		l, err := newLogicalSyncer(s, cfg, main, tmp, opts.BinDir, finished)
		if err != nil {
			return nil, err
		}
		s.logical = l
	default:
		return nil, fmt.Errorf("sync.mode %q: use \"dump\" or \"logical\"", cfg.Sync.Mode)
	}
	return s, nil
}

// Start begins the schedule (dump: a missed run runs now) or following
// (logical: main is filled first if it never was).
func (s *Syncer) Start(ctx context.Context) error {
	if s.logical != nil {
		return s.logical.start(ctx)
	}
	return s.dump.Start(ctx)
}

// Stop ends what Start began and waits for it; a run in progress is
// canceled and its half-built main removed. Safe unstarted or twice.
func (s *Syncer) Stop() {
	if s.logical != nil {
		s.logical.stop()
		return
	}
	s.dump.Stop()
}

// Status is GET /v1/sync.
func (s *Syncer) Status() api.SyncStatus {
	if s.logical != nil {
		return s.logical.status()
	}
	return s.dumpStatus()
}

// Trigger is POST /v1/sync: a dump run (joining the one running), a
// logical snapshot (waited for), or a logical resync (started).
func (s *Syncer) Trigger(ctx context.Context, req api.SyncRequest) (api.SyncStatus, error) {
	if s.logical != nil {
		return s.logical.trigger(ctx, req)
	}
	s.dump.Trigger()
	return s.dumpStatus(), nil
}

func (s *Syncer) dumpStatus() api.SyncStatus {
	st := s.dump.Status()
	p := st.Progress
	out := api.SyncStatus{
		Mode: api.SyncModeDump, State: st.State, Step: st.Step,
		StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, LastSuccess: st.LastSuccess, NextRun: st.NextRun,
		LastError: st.LastError, Snapshot: st.Snapshot,
		TablesDone: p.TablesDone, TablesTotal: p.TablesTotal, Rows: p.Rows, Bytes: p.Bytes,
	}
	// The rate is measured since the copy began, up to now: it means
	// something only while the run goes on.
	if st.State == api.SyncRunning {
		out.RateBytes = p.RateBytes
		out.ETASeconds = p.ETASeconds()
	}
	return out
}

// maskPlan is GET /v1/mask/plan.
func (s *Syncer) MaskPlan(ctx context.Context) (api.MaskPlan, error) {
	sel, warnings := s.sel, []string(nil)
	if s.logical != nil {
		var err error
		if sel, warnings, err = s.logical.f.maskSelection(ctx, maskBackoff); err != nil {
			return api.MaskPlan{}, err
		}
		warnings = append(warnings, s.logical.f.blockedWarnings()...)
	}
	plan, err := maskPlan(ctx, s.src, sel, s.rules, s.policy, maskBackoff, s.log)
	if err != nil {
		return api.MaskPlan{}, err
	}
	raw, err := json.Marshal(plan)
	if err != nil {
		return api.MaskPlan{}, err
	}
	out := api.MaskPlan{Plan: raw, Text: warningLines(warnings) + plan.String(), Unclassified: len(plan.Unclassified()), Warnings: warnings}
	if uerr := plan.UnclassifiedError(); uerr != nil {
		out.Error = uerr.Error()
	} else {
		out.Error = planRefusal(plan.Warnings)
	}
	return out, nil
}

// maskCheck is POST /v1/mask/check: it scans the database at conn (the
// twin picks it, with the scan role's rights).
func (s *Syncer) MaskCheck(ctx context.Context, conn string) (api.MaskCheck, error) {
	findings, exact, err := maskCheck(ctx, s.src, s.sel, s.rules, s.policy, s.key, maskBackoff, s.log, conn)
	if err != nil {
		return api.MaskCheck{}, err
	}
	out := api.MaskCheck{CheckedAt: time.Now().UTC(), ExactValues: exact, Findings: []api.MaskFinding{}}
	for _, f := range findings {
		out.Findings = append(out.Findings, api.MaskFinding{Schema: f.Schema, Table: f.Table, Column: f.Column,
			Row: f.Row, Detector: f.Detector, Redacted: f.Redacted})
	}
	return out, nil
}
