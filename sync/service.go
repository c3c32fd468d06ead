package twinsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/durable"
	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// service states, as `pgtwin sync status` shows them in dump mode.
const (
	serviceIdle    = api.SyncIdle
	serviceRunning = api.SyncRunning
	serviceFailed  = api.SyncFailed
)

// stepStarting is a running sync's step before the dump begins: the new,
// empty main is being made.
const stepStarting = "starting"

// replaceFunc builds a fresh main and fills it with fill; on success the new
// main is snapshotted and switched to, and the snapshot's id is returned. On
// failure nothing but the half-built volume may have changed, and that is
// removed. The daemon wraps twin.ReplaceMain.
type replaceFunc func(ctx context.Context, fill func(ctx context.Context, tgt target) error) (snapshot string, err error)

// serviceConfig configures a dump-mode Service.
type serviceConfig struct {
	Source    source
	Selection selection
	Parallel  int
	Schedule  string // sync.schedule; empty: only on request

	Rules  anonymize.Rules
	Policy string // anonymize.on_unclassified_pii
	Key    []byte

	Replace replaceFunc
	// StateFile persists the last run's outcome (write, fsync, rename), so a
	// missed scheduled run is caught up at start.
	StateFile string
	TempDir   string
	BinDir    string
	Backoff   backoff
	Log       zerolog.Logger
	// Finished, if set, is told each run's duration and outcome when it
	// ends (the daemon's sync duration metric).
	Finished func(d time.Duration, err error)
}

// service is dump mode as the daemon runs it: the schedule, one run at a
// time (requests while one runs join it), progress and the last outcome.
type service struct {
	cfg   serviceConfig
	log   zerolog.Logger
	sched *scheduler

	mu    sync.Mutex
	prog  *progress // the current run's, or the last one's
	state serviceState
}

// serviceState is what survives a restart (StateFile).
type serviceState struct {
	LastSuccess  *time.Time `json:"last_success"`
	LastSnapshot string     `json:"last_snapshot,omitempty"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	Failed       bool       `json:"failed"`
	LastError    string     `json:"last_error,omitempty"`
	FailedStep   string     `json:"failed_step,omitempty"`
}

// serviceStatus is a reading of the Service for `sync status`.
type serviceStatus struct {
	State       string
	Step        string
	StartedAt   *time.Time
	FinishedAt  *time.Time
	LastSuccess *time.Time
	NextRun     *time.Time
	LastError   string
	Snapshot    string
	Progress    stats
}

// newService validates the schedule and reads the persisted state.
func newService(cfg serviceConfig) (*service, error) {
	if cfg.Replace == nil {
		return nil, errors.New("dump sync: no way to replace main")
	}
	if len(cfg.Key) == 0 {
		return nil, errors.New("dump sync: no masking key")
	}
	s := &service{cfg: cfg, log: cfg.Log.With().Str(logkey.Component, "sync").Logger()}
	if cfg.StateFile != "" {
		b, err := os.ReadFile(cfg.StateFile)
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &s.state); err != nil {
				return nil, fmt.Errorf("sync state %s: %w", cfg.StateFile, err)
			}
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("sync state: %w", err)
		}
	}
	var last time.Time
	if s.state.LastSuccess != nil {
		last = *s.state.LastSuccess
	}
	sched, err := newScheduler(schedulerConfig{Spec: cfg.Schedule, Run: s.run, LastSuccess: last, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	s.sched = sched
	return s, nil
}

// Start begins the schedule (running a missed sync now).
func (s *service) Start(ctx context.Context) error { return s.sched.Start(ctx) }

// Stop cancels a running sync (its half-built main is removed) and ends the
// schedule. Safe to call more than once.
func (s *service) Stop() { s.sched.Stop() }

// Trigger starts a sync, or joins the one running.
func (s *service) Trigger() *syncRun { return s.sched.Request() }

// Status reads the current state.
func (s *service) Status() serviceStatus {
	s.mu.Lock()
	st := serviceStatus{
		State:       serviceIdle,
		StartedAt:   s.state.StartedAt,
		FinishedAt:  s.state.FinishedAt,
		LastSuccess: s.state.LastSuccess,
		Snapshot:    s.state.LastSnapshot,
	}
	if s.state.Failed {
		st.State, st.LastError, st.Step = serviceFailed, s.state.LastError, s.state.FailedStep
	}
	prog := s.prog
	s.mu.Unlock()
	if prog != nil {
		st.Progress = prog.Stats()
	}
	if cur := s.sched.Current(); cur != nil {
		st.State, st.LastError = serviceRunning, ""
		started := cur.StartedAt.UTC()
		st.StartedAt, st.FinishedAt = &started, nil
		st.Step = st.Progress.Step
		// Until the dump begins (the new main is being made) the progress
		// is the last run's, or nothing.
		if st.Progress.StartedAt.Before(cur.StartedAt) {
			st.Progress, st.Step = stats{}, stepStarting
		}
	}
	if n := s.sched.Next(); !n.IsZero() {
		n = n.UTC()
		st.NextRun = &n
	}
	return st
}

// run is one dump sync: the scheduler calls it, one at a time.
func (s *service) run(ctx context.Context) error {
	prog := &progress{}
	began := time.Now() // monotonic, for the duration; UTC() strips it
	started := began.UTC()
	s.mu.Lock()
	s.prog = prog
	s.mu.Unlock()

	d := &dumper{
		Source:    s.cfg.Source,
		Parallel:  s.cfg.Parallel,
		Selection: s.cfg.Selection,
		Plan:      anonymizePlan(s.cfg.Rules, s.cfg.Policy, s.cfg.Key, s.cfg.Selection),
		Backoff:   s.cfg.Backoff,
		Log:       s.cfg.Log,
		TempDir:   s.cfg.TempDir,
	}
	snap, err := s.cfg.Replace(ctx, func(ctx context.Context, tgt target) error {
		if tgt.BinDir == "" {
			tgt.BinDir = s.cfg.BinDir
		}
		return d.Run(ctx, tgt, prog)
	})
	finished := time.Now().UTC()
	if s.cfg.Finished != nil {
		s.cfg.Finished(time.Since(began), err)
	}

	s.mu.Lock()
	next := s.state
	next.StartedAt, next.FinishedAt = &started, &finished
	if err == nil {
		next.Failed, next.LastError, next.FailedStep = false, "", ""
		next.LastSuccess, next.LastSnapshot = &finished, snap
	} else {
		next.Failed = true
		next.LastError = redact(err).Error()
		next.FailedStep = prog.Stats().Step
		var se *stepError
		if errors.As(err, &se) {
			next.FailedStep = se.Step
		} else if next.FailedStep == stepDone {
			next.FailedStep = "snapshot"
		}
		if errors.Is(err, context.Canceled) {
			next.LastError = "canceled: the daemon stopped during the sync"
		}
	}
	s.state = next
	s.mu.Unlock()
	if perr := s.persist(next); perr != nil {
		s.log.Error().Err(perr).Msg("could not record the sync's outcome")
	}
	if err == nil {
		s.log.Info().Str(logkey.Snapshot, snap).Msg("new main twin published")
	}
	return err
}

// persist writes the state file durably: temp file, fsync, rename, fsync dir.
func (s *service) persist(st serviceState) error {
	if s.cfg.StateFile == "" {
		return nil
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.cfg.StateFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return durable.WriteFile(s.cfg.StateFile, b, 0o600)
}

// maskPlan reads the source catalog (with samples, kept in memory) and
// builds the masking plan the next sync would use.
func (s *service) MaskPlan(ctx context.Context) (*anonymize.Plan, error) {
	return maskPlan(ctx, s.cfg.Source, s.cfg.Selection, s.cfg.Rules, s.cfg.Policy, s.cfg.Backoff, s.log)
}

// maskCheck scans the database at target (a superuser connection string)
// with the leak detectors and the exact values sampled from the source.
func (s *service) MaskCheck(ctx context.Context, target string) ([]anonymize.Finding, int, error) {
	return maskCheck(ctx, s.cfg.Source, s.cfg.Selection, s.cfg.Rules, s.cfg.Policy, s.cfg.Key, s.cfg.Backoff, s.log, target)
}

// maskPlan builds the plan for the source as configured. Logical mode uses it
// too.
func maskPlan(ctx context.Context, src source, sel selection, rules anonymize.Rules, policy string, b backoff, log zerolog.Logger) (*anonymize.Plan, error) {
	d := &dumper{Source: src, Backoff: b, Log: log}
	conn, err := d.connectSource(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cat, err := ReadCatalog(ctx, conn, sel)
	if err != nil {
		return nil, fmt.Errorf("read source catalog: %w", redact(err))
	}
	plan, err := anonymize.BuildPlan(cat, rules, policy)
	if err != nil {
		return nil, err
	}
	// What the sync leaves out or refuses, said where the columns are.
	notes, err := sourceNotes(ctx, conn, "", sel.LargeObjects)
	if err != nil {
		return nil, redact(err)
	}
	plan.Warnings = append(plan.Warnings, notes...)
	sub, err := subsetNotes(ctx, conn, sel, sel.Subset)
	if err != nil {
		return nil, err
	}
	plan.Warnings = append(plan.Warnings, sub...)
	return plan, nil
}

// maskCheck is the leak check behind `pgtwin mask check`: it returns the
// findings (redacted) and how many exact source values were looked for.
func maskCheck(ctx context.Context, src source, sel selection, rules anonymize.Rules, policy string, key []byte, b backoff, log zerolog.Logger, target string) ([]anonymize.Finding, int, error) {
	plan, err := maskPlan(ctx, src, sel, rules, policy, b, log)
	if err != nil {
		return nil, 0, err
	}
	checker := plan.Checker(key)
	conn, err := pgx.Connect(ctx, target)
	if err != nil {
		return nil, 0, fmt.Errorf("connect to the database to check: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	findings, err := scanForLeaks(ctx, conn, checker, 0)
	if err != nil {
		return nil, 0, redact(err)
	}
	return findings, checker.ExactCount(), nil
}
