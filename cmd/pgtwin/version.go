package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print pgtwin's version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if a.output == "json" {
				return writeJSON(a.stdout, map[string]string{"version": version, "go": runtime.Version()})
			}
			_, err := fmt.Fprintf(a.stdout, "pgtwin %s\n", version)
			return err
		},
	}
}
