package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgtwin/pgtwin/twin/api"
)

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Daemon, engine driver, main twin, last sync, counts",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.output == "env" {
				return envNeedsBranch("status")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			s, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if a.output == "json" {
				return writeJSON(a.stdout, s)
			}
			return printStatus(a, s)
		},
	}
}

func printStatus(a *app, s *api.Status) error {
	tw := newTable(a.stdout)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Daemon", fmt.Sprintf("pgtwin %s, pid %d, up %s", s.Version, s.PID, upText(s.StartedAt)))
	row("Socket", a.socketOrDefault())
	row("Data dir", s.DataDir)
	row("Driver", s.Driver)
	main := s.Main.State
	if s.Main.Database != "" {
		main += ", database " + s.Main.Database
	}
	if s.Main.SizeBytes > 0 {
		main += ", " + humanBytes(s.Main.SizeBytes)
	}
	row("Main", main)
	row("Latest snapshot", dash(s.Main.LatestSnapshot))
	if s.Sync != nil {
		row("Sync", syncText(s.Sync))
		if s.Sync.LastSuccess != nil {
			row("Last sync", timeText(*s.Sync.LastSuccess))
		}
		if s.Sync.LagBytes != nil {
			lag := humanBytes(*s.Sync.LagBytes)
			if s.Sync.LagSeconds != nil {
				lag += fmt.Sprintf(" (%s)", time.Duration(*s.Sync.LagSeconds*float64(time.Second)).Round(time.Second))
			}
			row("Lag", lag)
		}
	} else {
		row("Sync", "not configured")
	}
	row("Branches", fmt.Sprintf("%d (%d running, %d suspended)", s.Branches, s.Running, s.Suspended))
	row("Snapshots", fmt.Sprint(s.Snapshots))
	if s.BranchMemory > 0 {
		row("Branch memory", humanBytes(s.BranchMemory))
	}
	who := s.CallerUser
	if s.CallerIsAdmin {
		who += " (admin)"
	}
	row("You", dash(who))
	if p := s.PITR; p != nil {
		row("PITR", pitrText(p))
	}
	if s.Pool != nil {
		row("Pool", fmt.Sprintf("%s free of %s", humanBytes(s.Pool.FreeBytes), humanBytes(s.Pool.TotalBytes)))
	}
	for _, w := range s.Warnings {
		row("Warning", w)
	}
	return tw.Flush()
}

func syncText(s *api.SyncStatus) string {
	t := s.Mode + ", " + s.State
	if s.Step != "" {
		t += " (" + s.Step + ")"
	}
	if s.TablesTotal > 0 && s.State == api.SyncRunning {
		t += fmt.Sprintf(", %d/%d tables", s.TablesDone, s.TablesTotal)
	}
	if s.LastError != "" {
		t += ", last error: " + s.LastError
	}
	return t
}

func upText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now().Sub(t).Round(time.Second)
	if d > time.Hour {
		d = d.Round(time.Minute)
	}
	return d.String()
}

func (a *app) socketOrDefault() string {
	s, err := a.socketPath()
	if err != nil {
		return "-"
	}
	return s
}

// pitrText is the window of exact --at for people.
func pitrText(p *api.PITRStatus) string {
	from := "no recovery base yet (take a snapshot)"
	if p.From != nil {
		from = "exact --at from " + timeText(*p.From)
	}
	return fmt.Sprintf("window %s, %s; archive %d segments, %s", p.Window, from, p.ArchiveSegments, humanBytes(p.ArchiveBytes))
}
