package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/twin/api"
)

// createIfNotExists is branches create --if-not-exists: the caller's branch
// of that name is printed unchanged, with a note naming the flags ignored.
func (a *app) createIfNotExists(cmd *cobra.Command, c *api.Client, req api.CreateBranchRequest) (*api.Branch, error) {
	b, existed, err := c.EnsureBranch(cmd.Context(), req)
	if err != nil || !existed {
		return b, err
	}
	var ignored []string
	for _, f := range []string{"parent", "at", "ttl", "protect"} {
		if cmd.Flags().Changed(f) {
			ignored = append(ignored, "--"+f)
		}
	}
	note := fmt.Sprintf("pgtwin: note: branch %s already exists; it is returned unchanged", b.Name)
	if len(ignored) > 0 {
		note += " (" + strings.Join(ignored, ", ") + " ignored)"
	}
	fmt.Fprintln(a.stderr, note)
	return b, nil
}

func (a *app) branchesSetTTLCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "set-ttl NAME DURATION",
		Short: "Expire a branch DURATION from now (0 removes its expiry)",
		Example: `  pgtwin branches set-ttl preview/pr-42 3d
  pgtwin branches set-ttl dev/alice 0`,
		Args:              exactArgs("NAME", "DURATION"),
		ValidArgsFunction: a.completeBranches,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := c.SetBranchTTL(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return a.printBranch(b)
		},
	}
}

func (a *app) branchesRenameCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "rename NAME NEW",
		Aliases:           []string{"mv"},
		Short:             "Rename a branch; its URL, port and password stay the same",
		Args:              exactArgs("NAME", "NEW"),
		ValidArgsFunction: a.completeBranches,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := c.RenameBranch(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return a.printBranch(b)
		},
	}
}

func (a *app) branchesDiffCmd() *cobra.Command {
	var exitCode bool
	var color string
	cmd := &cobra.Command{
		Use:   "diff NAME [OTHER]",
		Short: "Git-style schema diff of a branch against its parent as branched, or OTHER",
		Long: `Diff shows how the schema of branch NAME differs from OTHER: by default the
snapshot NAME was made (or last reset) from; OTHER may be a branch, main or a
snapshot id. Lines only OTHER has start with '-', lines only NAME has with '+'.
Ownership, privileges and pgtwin's own objects are left out. It prints nothing
when the schemas are equal; with --exit-code it exits 1 when they differ.`,
		Example: `  pgtwin branches diff dev/alice
  pgtwin branches diff dev/alice main --exit-code
  pgtwin branches diff preview/pr-42 -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("%s needs NAME and optionally OTHER", subPath(cmd))
			}
			return nil
		},
		ValidArgsFunction: a.completeBranches,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch color {
			case "auto", "always", "never":
			default:
				return usagef("--color must be auto, always or never, not %q", color)
			}
			c, err := a.clientNotEnv(envNeedsBranch("a diff"))
			if err != nil {
				return err
			}
			other := ""
			if len(args) == 2 {
				other = args[1]
			}
			d, err := c.DiffBranch(cmd.Context(), args[0], other)
			if err != nil {
				return err
			}
			if a.output == "json" {
				changes := d.Changes
				if changes == nil {
					changes = []api.SchemaChange{}
				}
				if err := writeJSON(a.stdout, changes); err != nil {
					return err
				}
			} else if err := printDiff(a.stdout, d.Diff, color == "always" || (color == "auto" && isTerminal(a.stdout))); err != nil {
				return err
			}
			if exitCode && len(d.Changes) > 0 {
				return errDiffers
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "exit 1 when the schemas differ (as git diff --exit-code)")
	cmd.Flags().StringVar(&color, "color", "auto", "colour the diff: auto (on a terminal), always or never")
	return cmd
}

// silentError fails the command (exit 1) without a message: the output
// already said it all (diff --exit-code).
type silentError struct{ what string }

func (e *silentError) Error() string { return e.what }

var errDiffers = &silentError{what: "the schemas differ"}

// printDiff writes a unified diff, coloured as git colours it.
func printDiff(w io.Writer, diff string, color bool) error {
	if !color || diff == "" {
		_, err := io.WriteString(w, diff)
		return err
	}
	var sb strings.Builder
	for _, l := range strings.SplitAfter(diff, "\n") {
		if l == "" {
			continue
		}
		body := strings.TrimSuffix(l, "\n")
		code := ""
		switch {
		case strings.HasPrefix(l, "diff "), strings.HasPrefix(l, "--- "), strings.HasPrefix(l, "+++ "):
			code = "1"
		case strings.HasPrefix(l, "@@"):
			code = "36"
		case strings.HasPrefix(l, "+"):
			code = "32"
		case strings.HasPrefix(l, "-"):
			code = "31"
		}
		if code == "" {
			sb.WriteString(l)
			continue
		}
		fmt.Fprintf(&sb, "\x1b[%sm%s\x1b[m\n", code, body)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func (a *app) branchesRestoreCmd() *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "restore NAME --at TIME",
		Short: "Put a branch back to what its parent held at TIME; same URL",
		Long: `Restore throws away everything in the branch and makes it what its parent (main,
or the branch it was made from) held at TIME: RFC 3339 or relative (2h), on the
source's clock. Port, role and password stay, so the URL keeps working.`,
		Example:           "  pgtwin branches restore dev/alice --at 2026-11-21T09:00:00Z\n  pgtwin branches restore dev/alice --at 30m",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeBranches,
		RunE: func(cmd *cobra.Command, args []string) error {
			if at == "" {
				return usagef("branches restore needs --at TIME (RFC 3339 or relative, e.g. 2h)")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := c.RestoreBranch(cmd.Context(), args[0], api.RestoreBranchRequest{At: at})
			if err != nil {
				return err
			}
			a.noteAt(b)
			return a.printBranch(b)
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "the time to go back to (RFC 3339, or relative like 2h)")
	return cmd
}

// noteAt says on stderr when a snapshot stood in for the time asked, or
// that an exact --at is to the second.
func (a *app) noteAt(b *api.Branch) {
	if b == nil || b.At == nil || b.AtExact == nil {
		return
	}
	if *b.AtExact {
		if b.At.Nanosecond() != 0 {
			fmt.Fprintf(a.stderr, "pgtwin: note: --at is exact to the second: %s holds main as of %s\n",
				b.Name, b.At.UTC().Truncate(time.Second).Format(time.RFC3339))
		}
		return
	}
	fmt.Fprintf(a.stderr, "pgtwin: note: %s holds snapshot %s, the newest not newer than %s, not that exact moment\n",
		b.Name, b.Snapshot, b.At.UTC().Format(time.RFC3339))
}
