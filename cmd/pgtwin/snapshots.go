package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgtwin/pgtwin/twin/api"
)

func (a *app) snapshotsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "snapshots",
		Aliases: []string{"snapshot"},
		Short:   "List, take and delete snapshots of main",
		Args:    noSubcommand,
		RunE:    helpOnly,
	}

	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List snapshots: id, time, size, how many branches use each",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.clientNotEnv(envNeedsBranch("a list"))
			if err != nil {
				return err
			}
			ss, err := c.ListSnapshots(cmd.Context())
			if err != nil {
				return err
			}
			if err := a.printSnapshots(ss); err != nil || a.output != "table" {
				return err
			}
			// The window of exact --at, under the table.
			if st, err := c.Status(cmd.Context()); err == nil && st.PITR != nil {
				_, err = fmt.Fprintf(a.stdout, "PITR: %s (snapshots marked * are recovery bases)\n", pitrText(st.PITR))
				return err
			}
			return nil
		},
	}

	var req api.CreateSnapshotRequest
	create := &cobra.Command{
		Use:   "create",
		Short: "Take a snapshot of main now",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.clientNotEnv(envNeedsBranch("a snapshot"))
			if err != nil {
				return err
			}
			s, err := c.CreateSnapshot(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printSnapshot(s)
		},
	}
	create.Flags().StringVar(&req.Name, "name", "", "snapshot id (default: s-<UTC time>)")

	del := &cobra.Command{
		Use:               "delete NAME",
		Aliases:           []string{"rm"},
		Short:             "Delete a snapshot that no branch uses",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeSnapshots,
		RunE:              a.runDelete("snapshot", "id", (*api.Client).DeleteSnapshot),
	}
	cmd.AddCommand(list, create, del)
	return cmd
}

func (a *app) completeSnapshots(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ss, err := c.ListSnapshots(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ids := make([]string, 0, len(ss))
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}
