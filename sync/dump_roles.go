package twinsync

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// Roles and grants. The twin restores the source's grants (GRANT/REVOKE on
// schemas, tables, columns, sequences, functions, types) and its row
// security policies as they are. Every role they name that the twin lacks
// is created as a NOLOGIN role with no attributes, and made a member of
// sourceRolesHub, a NOINHERIT role the owner role is a member of: a branch's
// login role (a member of the owner) can then SET ROLE to it, so an app
// that switches roles, and the policies and grants written for that role,
// behave as on the source; but without SET ROLE the branch role has none of
// its privileges and matches none of its policies, as the source's owner
// does not (FORCE ROW LEVEL SECURITY keeps meaning what it means there).
// Such a role can log in nowhere and owns nothing; SetupLogin leaves NOLOGIN
// roles without privileges alone. Default privileges (ALTER DEFAULT
// PRIVILEGES FOR ROLE <a source role>) are not restored: in the twin every
// object is created by a branch's own role, never by that source role, so
// they would change nothing; the log and `mask plan` say so.

// sourceRolesHub stands between the owner and the source's roles: NOINHERIT
// stops privileges (and policy membership) from flowing up through it, while
// SET ROLE, which needs membership only, still reaches them.
const sourceRolesHub = "pgtwin_source_roles"

// sourceGrantRoles are the roles the source database's grants and policies
// name (pg_shdepend: 'a' ACL, 'r' policy), not the predefined ones.
const sourceGrantRoles = `SELECT DISTINCT a.rolname::text FROM pg_catalog.pg_shdepend d
	JOIN pg_catalog.pg_roles a ON a.oid = d.refobjid
	WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND d.deptype IN ('a', 'r')
	  AND d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
	  AND a.oid >= 16384 ORDER BY 1`

// createSourceRoles creates, as NOLOGIN roles the owner is a member of, the
// roles the source's grants and policies name that the twin lacks.
func (r *run) createSourceRoles(ctx context.Context) error {
	rows, err := r.src.Query(ctx, sourceGrantRoles)
	if err != nil {
		return fmt.Errorf("source roles: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("source roles: %w", err)
	}
	hub := pgx.Identifier{sourceRolesHub}.Sanitize()
	madeHub := false
	for _, n := range names {
		var exists bool
		if err := r.tgtConn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)", n).Scan(&exists); err != nil {
			return fmt.Errorf("target roles: %w", err)
		}
		// A role the twin has already (its own pgtwin_* included) is used
		// as it is, and never handed to the owner.
		if exists {
			continue
		}
		if !madeHub {
			if err := r.createRolesHub(ctx); err != nil {
				return err
			}
			madeHub = true
		}
		role := pgx.Identifier{n}.Sanitize()
		if _, err := r.tgtConn.Exec(ctx, "CREATE ROLE "+role+" NOLOGIN ROLE "+hub); err != nil {
			return fmt.Errorf("create role %s named by the source's grants: %w", n, err)
		}
		r.log.Info().Str(logkey.Role, n).Msg("created NOLOGIN role named by the source's grants or policies")
	}
	return nil
}

func (r *run) createRolesHub(ctx context.Context) error {
	hub := pgx.Identifier{sourceRolesHub}.Sanitize()
	_, err := r.tgtConn.Exec(ctx, `DO $$BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = `+quoteLiteral(sourceRolesHub)+`) THEN
			CREATE ROLE `+hub+` NOLOGIN NOINHERIT;
		END IF;
	END$$`)
	if err == nil {
		_, err = r.tgtConn.Exec(ctx, "GRANT "+hub+" TO "+pgx.Identifier{r.tgt.Owner}.Sanitize())
	}
	if err != nil {
		return fmt.Errorf("role %s: %w", sourceRolesHub, err)
	}
	return nil
}

// skipDefaultACL reports (and logs) a default-privileges entry the twin does
// not restore.
func (r *run) skipDefaultACL(e tocEntry) bool {
	if e.desc != "DEFAULT ACL" {
		return false
	}
	r.log.Info().Str(logkey.Object, "default privileges "+e.tag).Msg("default privileges not restored: the twin's objects are created by branch roles, not the source's")
	return true
}

// sourceDefaultACLs counts the source's ALTER DEFAULT PRIVILEGES entries, for
// the plan's note.
func sourceDefaultACLs(ctx context.Context, conn *pgx.Conn) (int, error) {
	var n int
	err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_default_acl").Scan(&n)
	return n, err
}
