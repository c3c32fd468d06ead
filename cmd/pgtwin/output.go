package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/pgtwin/pgtwin/internal/units"
	"github.com/pgtwin/pgtwin/twin/api"
)

// now is the clock for relative times; tests pin it.
var now = time.Now

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// envNeedsBranch is the usage error for -o env on output that is not one branch.
func envNeedsBranch(what string) error {
	return usagef("--output env prints DATABASE_URL for one branch; use table or json for %s", what)
}

// printBranch shows one branch: the detail view in table mode.
func (a *app) printBranch(b *api.Branch) error {
	switch a.output {
	case "json":
		return writeJSON(a.stdout, b)
	case "env":
		a.notePasswordHidden(b)
		_, err := fmt.Fprintf(a.stdout, "DATABASE_URL=%s\n", b.ConnectionURI)
		return err
	}
	tw := newTable(a.stdout)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Name", b.Name)
	row("Parent", b.Parent)
	row("Snapshot", b.Snapshot)
	if b.At != nil {
		at := timeText(*b.At)
		if b.AtExact != nil && !*b.AtExact {
			at += " (snapshot " + b.Snapshot + " stood in)"
		} else if b.AtExact != nil {
			at += " (exact)"
		}
		row("At", at)
	}
	row("State", stateText(b))
	row("Owner", b.Owner)
	row("Created", timeText(b.CreatedAt))
	row("Expires", expiresText(b.ExpiresAt))
	row("Port", portText(b.Port))
	if b.Error != "" {
		row("Error", b.Error)
	}
	row("Changed", humanBytes(b.ChangedBytes))
	row("URL", dash(b.ConnectionURI))
	return tw.Flush()
}

// notePasswordHidden says on stderr why a URL has no password: the daemon
// shows it to the branch's owner only.
func (a *app) notePasswordHidden(b *api.Branch) {
	u, err := url.Parse(b.ConnectionURI)
	if b.ConnectionURI == "" || err != nil || u.User == nil {
		return
	}
	if _, ok := u.User.Password(); !ok {
		fmt.Fprintf(a.stderr, "pgtwin: note: the URL of %s has no password; it is shown to its owner (%s) only\n", b.Name, b.Owner)
	}
}

func (a *app) printBranches(bs []api.Branch) error {
	switch a.output {
	case "json":
		if bs == nil {
			bs = []api.Branch{}
		}
		return writeJSON(a.stdout, bs)
	case "env":
		return envNeedsBranch("a list")
	}
	if len(bs) == 0 {
		_, err := fmt.Fprintln(a.stdout, "No branches. Make one with: pgtwin branches create NAME")
		return err
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "NAME\tPARENT\tSTATE\tOWNER\tPORT\tCHANGED\tCREATED\tEXPIRES")
	for i := range bs {
		b := &bs[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, b.Parent, stateText(b), b.Owner,
			portText(b.Port), humanBytes(b.ChangedBytes), timeText(b.CreatedAt), expiresText(b.ExpiresAt))
	}
	return tw.Flush()
}

func (a *app) printSnapshot(s *api.Snapshot) error {
	switch a.output {
	case "json":
		return writeJSON(a.stdout, s)
	case "env":
		return envNeedsBranch("a snapshot")
	}
	tw := newTable(a.stdout)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("ID", s.ID)
	row("Created", timeText(s.CreatedAt))
	row("Source LSN", lsnText(s.SourceLSN))
	row("Size", humanBytes(s.SizeBytes))
	row("Branches", fmt.Sprint(s.Branches))
	return tw.Flush()
}

func (a *app) printSnapshots(ss []api.Snapshot) error {
	switch a.output {
	case "json":
		if ss == nil {
			ss = []api.Snapshot{}
		}
		return writeJSON(a.stdout, ss)
	case "env":
		return envNeedsBranch("a list")
	}
	if len(ss) == 0 {
		_, err := fmt.Fprintln(a.stdout, "No snapshots yet. Take one with: pgtwin snapshots create")
		return err
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "ID\tCREATED\tSIZE\tBRANCHES\tSOURCE LSN")
	for _, s := range ss {
		id := s.ID
		if s.PITRBase {
			id += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", id, timeText(s.CreatedAt), humanBytes(s.SizeBytes), s.Branches, lsnText(s.SourceLSN))
	}
	return tw.Flush()
}

func stateText(b *api.Branch) string {
	if b.Protected {
		return b.State + " (protected)"
	}
	return b.State
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func portText(p int) string {
	if p == 0 {
		return "-"
	}
	return fmt.Sprint(p)
}

func lsnText(l *string) string {
	if l == nil {
		return "-"
	}
	return *l
}

func expiresText(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return timeText(*t)
}

// timeText is relative within a day ("5m ago", "in 2h"), local time beyond.
func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now().Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	if d >= 24*time.Hour {
		return t.Local().Format("2006-01-02 15:04")
	}
	var s string
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	default:
		s = fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// humanBytes uses binary units, like df -h.
var humanBytes = units.IEC
