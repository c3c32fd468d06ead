package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgtwin/pgtwin/twin/api"
)

// branchCall is one daemon call on a named branch; method expressions such as
// (*api.Client).GetBranch fit it as they are.
type branchCall func(c *api.Client, ctx context.Context, name string) (*api.Branch, error)

// branchCmd completes cmd as a command on one branch NAME that prints the
// branch the daemon answers with, so every such command reads and prints alike.
func (a *app) branchCmd(cmd *cobra.Command, call branchCall) *cobra.Command {
	cmd.Args = exactArgs("NAME")
	cmd.ValidArgsFunction = a.completeBranches
	cmd.RunE = a.runBranch(call)
	return cmd
}

// runBranch calls the daemon for the branch named by the first argument and
// prints the branch it returns.
func (a *app) runBranch(call branchCall) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		b, err := call(c, cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return a.printBranch(b)
	}
}

// clientNotEnv is a.client for a command that prints something other than one
// branch: -o env is refused with envErr before the daemon is asked.
func (a *app) clientNotEnv(envErr error) (*api.Client, error) {
	if a.output == "env" {
		return nil, envErr
	}
	return a.client()
}

// errEnvNotBranch refuses -o env on the mask and sync reports.
func errEnvNotBranch() error {
	return usagef("--output env is for branches; use table or json")
}

// runDelete deletes the object named by the first argument and confirms it;
// kind names the object ("branch"), key is its JSON identity field.
func (a *app) runDelete(kind, key string, del func(c *api.Client, ctx context.Context, name string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.clientNotEnv(envNeedsBranch("delete"))
		if err != nil {
			return err
		}
		if err := del(c, cmd.Context(), args[0]); err != nil {
			return err
		}
		if a.output == "json" {
			return writeJSON(a.stdout, map[string]any{key: args[0], "deleted": true})
		}
		_, err = fmt.Fprintf(a.stdout, "Deleted %s %s.\n", kind, args[0])
		return err
	}
}
