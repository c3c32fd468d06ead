package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/config"
	twinsync "github.com/pgtwin/pgtwin/sync"
)

func (a *app) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon in the foreground (systemd runs this)",
		Long: `Run the daemon in the foreground: the main twin, its snapshots, the branches and
the socket API. Reads --config (default ` + defaultConfigPath + `; built-in
defaults when that file does not exist). Logs go to stderr: JSON unless stderr
is a terminal. SIGINT or SIGTERM stops it; branches keep running and are adopted
by the next start.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadServeConfig()
			if err != nil {
				return err
			}
			if err := checkServeConfig(cfg); err != nil {
				return fmt.Errorf("config %s: %w: fix the file, then start again", a.configShown(), err)
			}
			if a.socket != "" {
				cfg.Daemon.Socket = a.socket
			}
			log, err := newLogger(a.stderr, cfg.Daemon.LogLevel)
			if err != nil {
				return fmt.Errorf("daemon.log_level %q: %w", cfg.Daemon.LogLevel, err)
			}
			err = serve(cmd.Context(), cfg, log)
			if errors.Is(err, cmd.Context().Err()) && cmd.Context().Err() != nil {
				return nil // asked to stop
			}
			return err
		},
	}
}

// checkServeConfig asks the packages that own them about the values
// config.Validate cannot judge, before serve touches daemon.data_dir.
func checkServeConfig(cfg config.Config) error {
	if err := twinsync.ValidateSchedule(cfg.Sync.Schedule); err != nil {
		return err
	}
	if _, err := anonymize.ParseRules(cfg.Anonymize.Columns); err != nil {
		return err
	}
	return engine.CheckRunAs(cfg.Engine.RunAs)
}

// configShown names the config serve reads, for its errors.
func (a *app) configShown() string {
	switch {
	case a.configPath != "":
		return a.configPath
	case fileExists(defaultConfigPath):
		return defaultConfigPath
	}
	return "(built-in defaults; no " + defaultConfigPath + ")"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// loadServeConfig reads --config, or the default file when it exists. A file
// that was asked for must exist; a malformed one is an error naming the line
// or key (config.Load does that).
func (a *app) loadServeConfig() (config.Config, error) {
	path := a.configPath
	if path == "" {
		if _, err := os.Stat(defaultConfigPath); errors.Is(err, fs.ErrNotExist) {
			return config.DefaultConfig(), nil
		}
		path = defaultConfigPath
	}
	if _, err := os.Stat(path); err != nil {
		return config.Config{}, fmt.Errorf("config file %s: %w: pass an existing file to --config", path, errors.Unwrap(err))
	}
	cfg, err := config.Load(path)
	if err != nil {
		return config.Config{}, fmt.Errorf("%w: fix the file, then start again", err)
	}
	return cfg, nil
}
