package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/auto"
	"github.com/pgtwin/pgtwin/engine/proxy"
	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/internal/logkey"
	twinsync "github.com/pgtwin/pgtwin/sync"
	"github.com/pgtwin/pgtwin/twin"
)

// serve runs the daemon until ctx is done: storage driver, engine, twin
// (reconcile, sweeper), socket API. On the way out branches keep running;
// the next start adopts them.
func serve(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	log = log.With().Int(logkey.PID, os.Getpid()).Logger()
	procs := proxy.SpareP()
	dataDir, err := filepath.Abs(cfg.Daemon.DataDir)
	if err != nil {
		return fmt.Errorf("daemon.data_dir: %w", err)
	}
	cfg.Daemon.DataDir = dataDir
	if err := reachableDataDir(dataDir); err != nil {
		return err
	}
	drv, err := auto.Open(ctx, auto.Options{
		Name:          cfg.Engine.Driver,
		Root:          filepath.Join(dataDir, "volumes"),
		PoolImage:     filepath.Join(dataDir, "pool.img"),
		PoolImageSize: int64(cfg.Engine.PoolImageSize),
		Logger:        log,
	})
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	eng, err := engine.New(ctx, engine.Options{Config: cfg.Engine, DataDir: dataDir, Driver: drv, Logger: log})
	if err != nil {
		return err
	}
	tw, err := twin.New(ctx, twin.Options{Config: cfg, Engine: eng, Logger: log, Version: version})
	if err != nil {
		return err
	}
	useRedirect(tw, cfg, log)
	sy, err := twinsync.New(cfg, mainTwin{tw}, twinsync.Options{BinDir: eng.BinDir(), Log: log, Metrics: tw.SyncMetrics()})
	switch {
	case errors.Is(err, twinsync.ErrNoSource):
		log.Warn().Msg("no [source] url configured: sync and mask commands are off until one is set")
	case err != nil:
		return err
	}
	// Listen first: a second daemon on the same socket must fail before it
	// touches any volume.
	ln, err := tw.Listen()
	if err != nil {
		return err
	}
	defer ln.Close()
	log.Info().Str(logkey.Driver, drv.Name()).Str("postgres", eng.Version()).Str(logkey.Path, dataDir).Int(logkey.GOMAXPROCS, procs).Msg("daemon starting")
	if err := tw.Start(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("start: %w", err)
	}
	defer tw.Stop()
	if sy != nil {
		tw.SetSyncer(sy)
		if err := sy.Start(ctx); err != nil {
			return fmt.Errorf("start sync: %w", err)
		}
		defer sy.Stop()
	}
	log.Info().Msg("daemon ready")
	if err := tw.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info().Msg("daemon stopped; branches keep running")
	return ctx.Err()
}

// reachableDataDir creates daemon.data_dir and lets engine.run_as walk
// through it to the volumes and sockets inside (which keep their own modes;
// the state directory stays 0700).
func reachableDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("daemon.data_dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("daemon.data_dir: %w", err)
	}
	if fi.Mode().Perm()&0o001 == 0 {
		if err := os.Chmod(dir, fi.Mode().Perm()|0o011); err != nil {
			return fmt.Errorf("daemon.data_dir: %w", err)
		}
	}
	return nil
}
