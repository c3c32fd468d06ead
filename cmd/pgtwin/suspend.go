package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/pgtwin/pgtwin/twin/api"
)

// branchesSuspendCmds are `branches suspend` and `branches resume`.
func (a *app) branchesSuspendCmds() []*cobra.Command {
	mk := func(use, short, long string, call func(*api.Client, context.Context, string) (*api.Branch, error)) *cobra.Command {
		return &cobra.Command{
			Use:               use + " NAME",
			Short:             short,
			Long:              long,
			Args:              exactArgs("NAME"),
			ValidArgsFunction: a.completeBranches,
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := a.client()
				if err != nil {
					return err
				}
				b, err := call(c, cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printBranch(b)
			},
		}
	}
	return []*cobra.Command{
		mk("suspend", "Stop a branch's instance now; its URL keeps working and wakes it",
			`Suspend stops the branch's PostgreSQL (open sessions end) and frees its memory.
Its URL keeps working: the next connection starts it again. The daemon also
suspends branches idle for branches.idle_suspend.`,
			(*api.Client).SuspendBranch),
		mk("resume", "Start a suspended branch now; returns when it accepts connections",
			`Resume starts a suspended branch's PostgreSQL ahead of its first connection.
When branches.max_running branches already run, the least recently used idle one
is suspended first.`,
			(*api.Client).ResumeBranch),
	}
}
