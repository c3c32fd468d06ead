package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/twin/api"
)

const (
	defaultConfigPath = "/etc/pgtwin/pgtwin.toml"
	defaultSocket     = "/run/pgtwin/pgtwin.sock"
	socketEnv         = "PGTWIN_SOCKET"
)

// app is one invocation: its global flags and where output goes.
type app struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer

	socket     string
	configPath string
	output     string

	// started is set once flags and arguments were accepted: an error
	// before that is a usage error whatever cobra calls it.
	started bool
}

// Run executes the command line args (without the program name). It prints
// any error to stderr as one sentence and returns it; exitCode maps it.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := &app{ctx: ctx, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return nil
	}
	var se *silentError
	if errors.As(err, &se) {
		return err
	}
	var ue *usageError
	if !a.started && !errors.As(err, &ue) {
		err = &usageError{msg: err.Error()}
	}
	msg := describe(err)
	if errors.As(err, &ue) && !strings.Contains(msg, "--help") {
		msg += " (see pgtwin " + helpPath(root, args) + "--help)"
	}
	fmt.Fprintf(stderr, "pgtwin: %s\n", msg)
	return err
}

// helpPath is the subcommand path of args ("branches create "), for pointing
// at the right --help.
func helpPath(root *cobra.Command, args []string) string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == root {
		return ""
	}
	return strings.TrimPrefix(cmd.CommandPath(), root.Name()+" ") + " "
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "pgtwin",
		Short: "Copy-on-write branches of a masked twin of your production PostgreSQL",
		Long: `pgtwin keeps a local, PII-masked twin of a PostgreSQL database and hands out
copy-on-write branches of it: each branch is a full, writable PostgreSQL,
created in well under a second and reset in one call.

pgtwin serve runs the daemon; every other command talks to it over its socket.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noSubcommand,
		RunE:          helpOnly,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch a.output {
			case "table", "json", "env":
			default:
				return usagef("--output must be table, json or env, not %q", a.output)
			}
			a.started = true
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{msg: err.Error()}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.socket, "socket", "", "daemon socket (default $"+socketEnv+", else daemon.socket of the config file, else "+defaultSocket+")")
	pf.StringVar(&a.configPath, "config", "", "config file (default "+defaultConfigPath+" when it exists)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json or env")
	root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "env"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(
		a.serveCmd(),
		a.statusCmd(),
		a.snapshotsCmd(),
		a.branchesCmd(),
		a.connectionStringCmd(),
		a.syncCmd(),
		a.maskCmd(),
		a.versionCmd(),
	)
	return root
}

// noSubcommand rejects an unknown subcommand of a command group, which cobra
// would otherwise answer with help and exit code 0.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return &usageError{msg: msg}
}

func helpOnly(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// exactArgs is cobra.ExactArgs with a message naming what is missing.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		if len(args) < len(names) {
			return usagef("%s needs %s", subPath(cmd), strings.Join(names[len(args):], " and "))
		}
		return usagef("%s takes %d argument(s) (%s), got %d", subPath(cmd), len(names), strings.Join(names, ", "), len(args))
	}
}

// subPath is the command's path without the program name ("branches create").
func subPath(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", subPath(cmd), args[0])
	}
	return nil
}

// socketPath resolves where the daemon listens: --socket, $PGTWIN_SOCKET,
// daemon.socket of the config file, the built-in default.
func (a *app) socketPath() (string, error) {
	if a.socket != "" {
		return a.socket, nil
	}
	if s := os.Getenv(socketEnv); s != "" {
		return s, nil
	}
	if a.configPath != "" {
		cfg, err := config.Load(a.configPath)
		if err != nil {
			return "", fmt.Errorf("%w: fix it, or pass --socket", err)
		}
		return cfg.Daemon.Socket, nil
	}
	// The default file is the daemon's; it may be unreadable for a developer
	// (mode 0640) or mid-edit. The client then falls back quietly: a wrong
	// socket gets its own clear error.
	if f, err := os.Open(defaultConfigPath); err == nil {
		defer f.Close()
		if cfg, err := config.ParseConfig(f); err == nil && cfg.Daemon.Socket != "" {
			return cfg.Daemon.Socket, nil
		}
	}
	return defaultSocket, nil
}

func (a *app) client() (*api.Client, error) {
	s, err := a.socketPath()
	if err != nil {
		return nil, err
	}
	return api.NewClient(s), nil
}
