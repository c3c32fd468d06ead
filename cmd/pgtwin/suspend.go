package main

import (
	"github.com/spf13/cobra"

	"github.com/pgtwin/pgtwin/twin/api"
)

// branchesSuspendCmds are `branches suspend` and `branches resume`.
func (a *app) branchesSuspendCmds() []*cobra.Command {
	mk := func(use, short, long string, call branchCall) *cobra.Command {
		return a.branchCmd(&cobra.Command{Use: use + " NAME", Short: short, Long: long}, call)
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
