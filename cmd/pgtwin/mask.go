package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgtwin/pgtwin/internal/colkey"
)

func (a *app) maskCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mask",
		Short: "Review the masking plan and check the twin for PII that escaped",
		Args:  noSubcommand,
		RunE:  helpOnly,
	}
	plan := &cobra.Command{
		Use:   "plan",
		Short: "Every source column: its rule, or why none is needed",
		Long: `Every column of every table the sync copies, with what happens to it: masked (and
by which rule, or inherited through which foreign key), kept (and why), or
UNCLASSIFIED PII with the config line to add. The daemon reads the source
catalog and a small sample of values with its own config and credentials.

Exits 1 when any column is unclassified PII (a sync would stop); -o json for CI.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.clientNotEnv(errEnvNotBranch())
			if err != nil {
				return err
			}
			p, err := c.MaskPlan(cmd.Context())
			if err != nil {
				return err
			}
			if a.output == "json" {
				if err := writeJSON(a.stdout, p); err != nil {
					return err
				}
			} else {
				fmt.Fprint(a.stdout, p.Text)
			}
			if p.Unclassified > 0 {
				return fmt.Errorf("%d column(s) look like PII and have no rule; add the rules shown to [anonymize.columns] and restart the daemon", p.Unclassified)
			}
			if p.Error != "" {
				return errors.New(p.Error)
			}
			return nil
		},
	}
	check := &cobra.Command{
		Use:   "check [BRANCH]",
		Short: "Scan the twin (or a branch) for PII that escaped masking",
		Long: `Scan main (or BRANCH) with the PII detectors and with exact values sampled from
the source, and list every value that looks like it escaped masking, redacted.
Exits 1 on any finding.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("mask check takes at most one branch name, got %d arguments", len(args))
			}
			return nil
		},
		ValidArgsFunction: a.completeBranches,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.clientNotEnv(errEnvNotBranch())
			if err != nil {
				return err
			}
			branch := ""
			if len(args) == 1 {
				branch = args[0]
			}
			res, err := c.MaskCheck(cmd.Context(), branch)
			if err != nil {
				return err
			}
			if a.output == "json" {
				if err := writeJSON(a.stdout, res); err != nil {
					return err
				}
			} else if len(res.Findings) == 0 {
				fmt.Fprintf(a.stdout, "%s: no PII found (detectors and %d exact values sampled from the source)\n", res.Target, res.ExactValues)
			} else {
				tw := newTable(a.stdout)
				fmt.Fprintln(tw, "COLUMN\tROW\tDETECTOR\tVALUE (REDACTED)")
				for _, f := range res.Findings {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", colkey.Format(f.Schema, f.Table, f.Column), dash(f.Row), f.Detector, f.Redacted)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if len(res.Findings) > 0 {
				return fmt.Errorf("%d value(s) in %s look like unmasked PII; add or fix rules in [anonymize.columns], then sync again", len(res.Findings), res.Target)
			}
			return nil
		},
	}
	cmd.AddCommand(plan, check)
	return cmd
}
