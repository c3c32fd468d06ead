package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/pgtwin/pgtwin/twin/api"
)

func (a *app) syncCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Refresh the main twin from the source, and watch how it goes",
		Args:  noSubcommand,
		RunE:  helpOnly,
	}
	var wait, resync bool
	now := &cobra.Command{
		Use:   "now",
		Short: "Start a sync (dump mode) or take a snapshot (logical mode)",
		Long: `Start a sync now (dump mode: a fresh, masked copy of the source becomes main and a
new snapshot), or join the one running. In logical mode, take a snapshot of main
at a source transaction boundary; --resync rebuilds main from the source.

With --wait it returns when the sync has finished, showing progress (a bar on a
terminal, plain lines otherwise), and exits 1 if the sync failed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.clientNotEnv(errEnvNotBranch())
			if err != nil {
				return err
			}
			st, err := c.Sync(cmd.Context(), api.SyncRequest{Resync: resync})
			if err != nil {
				return err
			}
			if wait {
				st, err = a.waitSync(cmd.Context(), c, st)
				if err != nil {
					return err
				}
			}
			if a.output == "json" {
				if err := writeJSON(a.stdout, st); err != nil {
					return err
				}
			} else if !wait {
				fmt.Fprintf(a.stdout, "sync %s", st.State)
				if st.Step != "" {
					fmt.Fprintf(a.stdout, " (%s)", st.Step)
				}
				fmt.Fprintln(a.stdout, "; follow it with pgtwin sync status")
			}
			if st.State == api.SyncFailed {
				return fmt.Errorf("sync failed at step %s: %s", dash(st.Step), st.LastError)
			}
			return nil
		},
	}
	now.Flags().BoolVar(&wait, "wait", false, "wait until the sync has finished; exit 1 if it failed")
	now.Flags().BoolVar(&resync, "resync", false, "logical mode: rebuild main from the source (drops and recreates the slot)")

	status := &cobra.Command{
		Use:   "status",
		Short: "State, progress, last error, next run; lag and slot health in logical mode",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.clientNotEnv(errEnvNotBranch())
			if err != nil {
				return err
			}
			st, err := c.SyncStatus(cmd.Context())
			if err != nil {
				return err
			}
			if a.output == "json" {
				return writeJSON(a.stdout, st)
			}
			return printSyncStatus(a.stdout, st)
		},
	}
	cmd.AddCommand(now, status, a.syncStopCmd(), a.syncSetupSQLCmd())
	return cmd
}

// waitSync polls until the run that began at first.StartedAt has finished.
func (a *app) waitSync(ctx context.Context, c *api.Client, first *api.SyncStatus) (*api.SyncStatus, error) {
	tty := false
	if f, ok := a.stdout.(*os.File); ok && a.output != "json" {
		tty = isatty.IsTerminal(f.Fd())
	}
	var lastLine string
	lastPrint := time.Time{}
	st := first
	for {
		if st.State != api.SyncRunning && st.State != api.SyncInitializing {
			break
		}
		if a.output != "json" {
			line := progressLine(st)
			switch {
			case tty:
				fmt.Fprintf(a.stdout, "\r\033[K%s", progressBar(st)+" "+line)
			case line != lastLine && (stepOf(line) != stepOf(lastLine) || time.Since(lastPrint) >= 5*time.Second):
				fmt.Fprintln(a.stdout, line)
				lastLine, lastPrint = line, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		var err error
		if st, err = c.SyncStatus(ctx); err != nil {
			return nil, err
		}
	}
	if tty {
		fmt.Fprint(a.stdout, "\r\033[K")
	}
	if a.output != "json" {
		switch st.State {
		case api.SyncFailed:
			// the caller turns it into the error
		default:
			fmt.Fprintf(a.stdout, "sync finished: snapshot %s, %s rows, %s copied", dash(st.Snapshot), countText(st.Rows), humanBytes(st.Bytes))
			if st.StartedAt != nil && st.FinishedAt != nil {
				fmt.Fprintf(a.stdout, " in %s", st.FinishedAt.Sub(*st.StartedAt).Round(100*time.Millisecond))
			}
			fmt.Fprintln(a.stdout)
		}
	}
	return st, nil
}

func stepOf(line string) string {
	s, _, _ := strings.Cut(line, ":")
	return s
}

func progressLine(st *api.SyncStatus) string {
	step := st.Step
	if step == "" {
		step = "starting"
	}
	s := step + ":"
	if st.TablesTotal > 0 {
		s += fmt.Sprintf(" %d/%d tables,", st.TablesDone, st.TablesTotal)
	}
	s += fmt.Sprintf(" %s rows, %s", countText(st.Rows), humanBytes(st.Bytes))
	if st.RateBytes > 0 {
		s += fmt.Sprintf(", %s/s", humanBytes(int64(st.RateBytes)))
	}
	if st.ETASeconds != nil {
		s += fmt.Sprintf(", ETA %s", (time.Duration(*st.ETASeconds) * time.Second).Round(time.Second))
	}
	return s
}

func progressBar(st *api.SyncStatus) string {
	const width = 24
	frac := 0.0
	if st.TablesTotal > 0 {
		frac = float64(st.TablesDone) / float64(st.TablesTotal)
	}
	n := int(frac * width)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func countText(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 100_000:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func printSyncStatus(w io.Writer, st *api.SyncStatus) error {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	tp := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return timeText(*t)
	}
	row("Mode", st.Mode)
	row("State", st.State)
	row("Step", dash(st.Step))
	if st.TablesTotal > 0 || st.Rows > 0 {
		row("Tables", fmt.Sprintf("%d/%d", st.TablesDone, st.TablesTotal))
		row("Rows", countText(st.Rows))
		row("Copied", humanBytes(st.Bytes))
	}
	if st.RateBytes > 0 {
		row("Rate", humanBytes(int64(st.RateBytes))+"/s")
	}
	if st.ETASeconds != nil {
		row("ETA", (time.Duration(*st.ETASeconds) * time.Second).Round(time.Second).String())
	}
	row("Started", tp(st.StartedAt))
	row("Finished", tp(st.FinishedAt))
	row("Last success", tp(st.LastSuccess))
	row("Snapshot", dash(st.Snapshot))
	row("Next run", tp(st.NextRun))
	if st.Mode == api.SyncModeLogical {
		row("Slot", dash(st.Slot)+" ("+dash(st.SlotHealth)+")")
		row("Confirmed LSN", dash(st.ConfirmedLSN))
		if st.LagBytes != nil {
			lag := humanBytes(*st.LagBytes)
			if st.LagSeconds != nil {
				lag += fmt.Sprintf(" (%s)", time.Duration(*st.LagSeconds*float64(time.Second)).Round(time.Second))
			}
			row("Lag", lag)
		}
	}
	for _, w := range st.Warnings {
		row("Warning", w)
	}
	if st.LastError != "" {
		// Multi-line errors (the unclassified columns and their rules)
		// follow the table as they are.
		first, rest, _ := strings.Cut(st.LastError, "\n")
		row("Last error", first)
		if err := tw.Flush(); err != nil {
			return err
		}
		if rest != "" {
			fmt.Fprintln(w, rest)
		}
		return nil
	}
	return tw.Flush()
}
