package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	twinsync "github.com/pgtwin/pgtwin/sync"
)

func (a *app) syncSetupSQLCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "setup-sql",
		Short: "The SQL a source admin runs once so pgtwin can sync with a least-privilege role",
		Long: `Print, for the configured sync.mode, the SQL to run once in the source database as
its superuser (on RDS, Aurora or Cloud SQL: the master user): grants to the role
in source.url (which must exist; a commented CREATE ROLE shows how) to read the
synced schemas, and in logical mode the REPLICATION attribute (rds_replication on
RDS) and the publication, named as sync.publication, holding the selected tables.

Reads only --config (default ` + defaultConfigPath + `); no daemon is needed.

  pgtwin sync setup-sql > pgtwin-setup.sql
  psql -h SOURCE_HOST -U postgres -d DB -v ON_ERROR_STOP=1 -f pgtwin-setup.sql`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadServeConfig()
			if err != nil {
				return err
			}
			sql, err := twinsync.SetupSQL(cfg)
			if errors.Is(err, twinsync.ErrNoSource) {
				return fmt.Errorf("%s has no [source] url: set it to the URL pgtwin will connect with (its user is the role the SQL grants to)", a.configShown())
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(a.stdout, sql)
			return err
		},
	}
}
