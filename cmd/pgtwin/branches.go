package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgtwin/pgtwin/twin/api"
)

func (a *app) branchesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "branches",
		Aliases: []string{"branch"},
		Short:   "Create, list, reset, diff, rename and delete branches",
		Args:    noSubcommand,
		RunE:    helpOnly,
	}
	cmd.AddCommand(
		a.branchesCreateCmd(),
		a.branchesListCmd(),
		a.branchesGetCmd(),
		a.branchesResetCmd(),
		a.branchesDeleteCmd(),
		a.branchesSetTTLCmd(),
		a.branchesRenameCmd(),
		a.branchesDiffCmd(),
		a.branchesRestoreCmd(),
		a.branchesProtectCmd("protect", true),
		a.branchesProtectCmd("unprotect", false),
	)
	cmd.AddCommand(a.branchesSuspendCmds()...)
	return cmd
}

func (a *app) branchesCreateCmd() *cobra.Command {
	var req api.CreateBranchRequest
	var ifNotExists bool
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a branch; returns when it accepts connections",
		Example: `  pgtwin branches create dev/alice
  pgtwin branches create preview/pr-42 --ttl 3d
  pgtwin branches create dev/alice-exp --parent dev/alice
  pgtwin branches create yesterday --at 24h -o env >> .env
  pgtwin branches create preview/pr-42 --if-not-exists -o env >> "$GITHUB_ENV"`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			req.Name = args[0]
			var b *api.Branch
			if ifNotExists {
				b, err = a.createIfNotExists(cmd, c, req)
			} else {
				b, err = c.CreateBranch(cmd.Context(), req)
			}
			if err != nil {
				return err
			}
			a.noteAt(b)
			return a.printBranch(b)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Parent, "parent", "", "main (default), a branch name, or a snapshot id")
	f.StringVar(&req.At, "at", "", "branch from the newest snapshot not newer than this time (RFC 3339, or relative like 2h)")
	f.StringVar(&req.TTL, "ttl", "", "delete the branch after this long (e.g. 30m, 8h, 7d; default branches.default_ttl)")
	f.BoolVar(&req.Protect, "protect", false, "refuse reset and delete until unprotected")
	f.BoolVar(&ifNotExists, "if-not-exists", false, "if you already have a branch of this name, print it unchanged (other flags ignored) and exit 0")
	cmd.RegisterFlagCompletionFunc("parent", a.completeBranches)
	return cmd
}

func (a *app) branchesListCmd() *cobra.Command {
	var tree bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the branches you may see (all of them for admins)",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.clientNotEnv(envNeedsBranch("a list"))
			if err != nil {
				return err
			}
			bs, err := c.ListBranches(cmd.Context())
			if err != nil {
				return err
			}
			if !tree || a.output == "json" {
				return a.printBranches(bs)
			}
			ss, err := c.ListSnapshots(cmd.Context())
			if err != nil {
				return err
			}
			return printTree(a.stdout, bs, ss)
		},
	}
	cmd.Flags().BoolVar(&tree, "tree", false, "draw the tree: main, its snapshots, and the branches made from each")
	return cmd
}

func (a *app) branchesGetCmd() *cobra.Command {
	return a.branchCmd(&cobra.Command{
		Use:     "get NAME",
		Aliases: []string{"show"},
		Short:   "Show one branch, with its connection URL",
	}, (*api.Client).GetBranch)
}

func (a *app) branchesResetCmd() *cobra.Command {
	return a.branchCmd(&cobra.Command{
		Use:   "reset NAME",
		Short: "Throw away a branch's changes: back to its parent's newest state, same URL",
		Long: `Reset throws away everything written in the branch and clones it again from its
parent's newest state (for main, the newest snapshot; for a branch, its current
state). Port, role and password stay the same, so the URL keeps working.`,
	}, (*api.Client).ResetBranch)
}

func (a *app) branchesDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "delete NAME",
		Aliases:           []string{"rm"},
		Short:             "Delete a branch, its instance and its data",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeBranches,
		RunE:              a.runDelete("branch", "name", (*api.Client).DeleteBranch),
	}
}

func (a *app) branchesProtectCmd(use string, protect bool) *cobra.Command {
	short := "Refuse reset and delete of a branch until it is unprotected"
	if !protect {
		short = "Allow reset and delete of a protected branch again"
	}
	return a.branchCmd(&cobra.Command{
		Use:   use + " NAME",
		Short: short,
	}, func(c *api.Client, ctx context.Context, name string) (*api.Branch, error) {
		return c.UpdateBranch(ctx, name, api.UpdateBranchRequest{Protected: &protect})
	})
}

func (a *app) connectionStringCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "connection-string NAME",
		Aliases:           []string{"cs"},
		Short:             "Print a branch's URL (postgres://...)",
		Example:           "  psql \"$(pgtwin cs dev/alice)\"\n  pgtwin cs dev/alice -o env >> .env",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeBranches,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := c.GetBranch(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if b.ConnectionURI == "" {
				return fmt.Errorf("branch %s has no connection URL yet (state %s): try again when it is ready", b.Name, b.State)
			}
			switch a.output {
			case "json":
				return writeJSON(a.stdout, map[string]string{"name": b.Name, "connection_uri": b.ConnectionURI})
			case "env":
				return a.printBranch(b)
			}
			a.notePasswordHidden(b)
			_, err = fmt.Fprintln(a.stdout, b.ConnectionURI)
			return err
		},
	}
}

// completeBranches offers the caller's branch names; it asks the daemon and
// stays silent when it cannot.
func (a *app) completeBranches(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 && cmd.Name() != "create" {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	bs, err := c.ListBranches(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(bs))
	for _, b := range bs {
		names = append(names, b.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
