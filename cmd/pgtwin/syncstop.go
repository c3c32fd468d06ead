package main

import (
	"fmt"

	"github.com/spf13/cobra"

	twinsync "github.com/pgtwin/pgtwin/sync"
	"github.com/pgtwin/pgtwin/twin"
	"github.com/pgtwin/pgtwin/twin/api"
)

var _ twin.SyncStopper = (*twinsync.Syncer)(nil)

func (a *app) syncStopCmd() *cobra.Command {
	var dropSlot bool
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Logical mode: stop following the source; --drop-slot also drops pgtwin's slot and publication there",
		Long: `Stop following the source (logical mode). Main and its snapshots stay, and
branches keep working; the stop holds across daemon restarts until
pgtwin sync now follows again from the slot.

With --drop-slot, pgtwin's replication slot is dropped on the source, so the
source no longer keeps WAL for this twin, and so is the publication when
pgtwin manages it (sync.publication empty; a configured one is left as it is).
Afterwards only pgtwin sync now --resync follows again, with a fresh copy.
Run it before removing a daemon for good.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.clientNotEnv(errEnvNotBranch())
			if err != nil {
				return err
			}
			st, err := c.SyncStop(cmd.Context(), api.SyncStopRequest{DropSlot: dropSlot})
			if err != nil {
				return err
			}
			if a.output == "json" {
				return writeJSON(a.stdout, st)
			}
			if dropSlot {
				fmt.Fprintf(a.stdout, "sync %s; slot %s dropped on the source; pgtwin sync now --resync follows again\n", st.State, dash(st.Slot))
				return nil
			}
			fmt.Fprintf(a.stdout, "sync %s; slot %s kept on the source (it keeps WAL for the twin); pgtwin sync now follows again\n", st.State, dash(st.Slot))
			return nil
		},
	}
	cmd.Flags().BoolVar(&dropSlot, "drop-slot", false, "also drop pgtwin's replication slot (and its own publication) on the source")
	return cmd
}
