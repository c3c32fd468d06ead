package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/config"
	twinsync "github.com/pgtwin/pgtwin/sync"
	"github.com/pgtwin/pgtwin/twin"
	"github.com/pgtwin/pgtwin/twin/api"
)

// maskBackoff keeps `mask plan` and `mask check` from hanging for minutes on
// an unreachable source: they answer a person waiting at a terminal.
var maskBackoff = twinsync.Backoff{Initial: 500 * time.Millisecond, Max: 2 * time.Second, Attempts: 3}

// syncer is the daemon's sync as the twin's socket API sees it (twin.Syncer
// and twin.Masking): dump mode runs a twinsync.Service.
type syncer struct {
	mode    string
	svc     *twinsync.Service // dump mode
	src     twinsync.Source
	sel     twinsync.Selection
	rules   anonymize.Rules
	policy  string
	key     []byte
	log     zerolog.Logger
	start   func(ctx context.Context) error
	stop    func()
	status  func() api.SyncStatus
	trigger func(ctx context.Context, req api.SyncRequest) (api.SyncStatus, error)
}

// newSyncer builds the sync for cfg (nil when no source is configured). It
// reads (or creates) the masking key and parses the rules now, so a bad
// config stops the daemon at start rather than at 2 a.m.
func newSyncer(cfg config.Config, eng *engine.Engine, tw *twin.Twin, log zerolog.Logger) (*syncer, error) {
	if cfg.Source.URL == "" {
		log.Warn().Msg("no [source] url configured: sync and mask commands are off until one is set")
		return nil, nil
	}
	rules, err := anonymize.ParseRules(cfg.Anonymize.Columns)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	key, err := anonymize.LoadOrCreateKey(cfg.Anonymize.KeyFile, log)
	if err != nil {
		return nil, fmt.Errorf("anonymize.key_file: %w", err)
	}
	s := &syncer{
		mode:   cfg.Sync.Mode,
		src:    twinsync.Source{URL: cfg.Source.URL, PasswordFile: cfg.Source.PasswordFile},
		sel:    twinsync.Selection{IncludeSchemas: cfg.Sync.IncludeSchemas, ExcludeTables: cfg.Sync.ExcludeTables},
		rules:  rules,
		policy: cfg.Anonymize.OnUnclassifiedPII,
		key:    key,
		log:    log,
	}
	binDir := eng.BinDir()
	tmp := filepath.Join(cfg.Daemon.DataDir, "tmp")
	// Schema archives (DDL only) and logical mode's masked spill files.
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("daemon.data_dir: %w", err)
	}
	switch cfg.Sync.Mode {
	case "", "dump":
		svc, err := twinsync.NewService(twinsync.ServiceConfig{
			Source: s.src, Selection: s.sel, Parallel: cfg.Sync.Parallel, Schedule: cfg.Sync.Schedule,
			Rules: rules, Policy: s.policy, Key: key,
			Replace: func(ctx context.Context, fill func(context.Context, twinsync.Target) error) (string, error) {
				snap, err := tw.ReplaceMain(ctx, func(ctx context.Context, inst *engine.Instance) error {
					volumes := filepath.Join(cfg.Daemon.DataDir, "volumes")
					w := watchFree(volumes)
					err := fill(ctx, twinsync.Target{ConnString: inst.ConnString(inst.Superuser, tw.MainDatabase()), BinDir: binDir})
					return diskFull(err, volumes, w.stop(), eng.LogPath(inst.ID))
				})
				return snap.ID, err
			},
			StateFile: filepath.Join(cfg.Daemon.DataDir, "state", "sync.json"),
			TempDir:   tmp,
			BinDir:    binDir,
			Log:       log,
			Finished:  tw.SyncMetrics().SyncFinished,
		})
		if err != nil {
			return nil, err
		}
		s.svc = svc
		s.start, s.stop = svc.Start, svc.Stop
		s.status = s.dumpStatus
		s.trigger = func(ctx context.Context, req api.SyncRequest) (api.SyncStatus, error) {
			svc.Trigger()
			return s.dumpStatus(), nil
		}
	case "logical":
		return newLogicalSyncer(s, cfg, binDir, tmp, tw)
	default:
		return nil, fmt.Errorf("sync.mode %q: use \"dump\" or \"logical\"", cfg.Sync.Mode)
	}
	return s, nil
}

func (s *syncer) Status() api.SyncStatus { return s.status() }

func (s *syncer) Trigger(ctx context.Context, req api.SyncRequest) (api.SyncStatus, error) {
	return s.trigger(ctx, req)
}

func (s *syncer) dumpStatus() api.SyncStatus {
	st := s.svc.Status()
	p := st.Progress
	out := api.SyncStatus{
		Mode: "dump", State: st.State, Step: st.Step,
		StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, LastSuccess: st.LastSuccess, NextRun: st.NextRun,
		LastError: st.LastError, Snapshot: st.Snapshot,
		TablesDone: p.TablesDone, TablesTotal: p.TablesTotal, Rows: p.Rows, Bytes: p.Bytes,
	}
	// The rate is measured since the copy began, up to now: it means
	// something only while the run goes on.
	if st.State == twinsync.ServiceRunning {
		out.RateBytes = p.RateBytes
		out.ETASeconds = p.ETASeconds()
	}
	return out
}

// MaskPlan is GET /v1/mask/plan.
func (s *syncer) MaskPlan(ctx context.Context) (api.MaskPlan, error) {
	plan, err := twinsync.MaskPlan(ctx, s.src, s.sel, s.rules, s.policy, maskBackoff, s.log)
	if err != nil {
		return api.MaskPlan{}, err
	}
	raw, err := json.Marshal(plan)
	if err != nil {
		return api.MaskPlan{}, err
	}
	out := api.MaskPlan{Plan: raw, Text: plan.String(), Unclassified: len(plan.Unclassified())}
	if uerr := plan.UnclassifiedError(); uerr != nil {
		out.Error = uerr.Error()
	}
	return out, nil
}

// MaskCheck is POST /v1/mask/check.
func (s *syncer) MaskCheck(ctx context.Context, conn string) (api.MaskCheck, error) {
	findings, exact, err := twinsync.MaskCheck(ctx, s.src, s.sel, s.rules, s.policy, s.key, maskBackoff, s.log, conn)
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
