package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// ReaderRole is the role the leak scan logs in as: a member of
// pg_read_all_data with BYPASSRLS, and nothing else. The scan reads tables
// a branch owner made; as superuser, any function she hid in them (a policy,
// a cast, a shadowing operator) would run with the superuser's rights.
// BYPASSRLS keeps her policies from hiding rows from the scan, and from
// running at all.
const ReaderRole = "pgtwin_scan"

// firstNormalOID is PostgreSQL's FirstNormalObjectId: roles below it are the
// bootstrap superuser (10) and the predefined pg_* roles.
const firstNormalOID = 16384

// Login is the one login role a branch opens with.
type Login struct {
	Role     string
	Password string
	// MemberOf is the role that owns the branch's objects.
	MemberOf string
}

// maintenanceDB is the database daemon sessions use for cluster-wide work
// (roles): one the branch owner does not own, so none of her objects or
// database settings are there. It is "postgres" unless the twin's own
// database has that name.
func maintenanceDB(appDB string) string {
	if appDB == "postgres" {
		return "template1"
	}
	return "postgres"
}

// SetupLogin gives l.Role a login with l.Password (as a SCRAM verifier, so
// the plaintext never reaches SQL or a server log), makes it a member of
// l.MemberOf, and disarms every other role the clone carries: no role but
// the bootstrap superuser keeps SUPERUSER, CREATEROLE, REPLICATION,
// BYPASSRLS, LOGIN, a password or a predefined pg_* role. A clone of
// someone's branch holds whatever roles were made in it; none of them is the
// daemon's to trust, ReaderRole included (ReaderConnString arms it afresh
// when a scan needs it). Roles that held a privilege are logged.
//
// appDB is the twin's database; the work runs in maintenanceDB(appDB).
func (e *Engine) SetupLogin(ctx context.Context, inst *Instance, appDB string, l Login) error {
	if l.Role == "" || l.MemberOf == "" || l.Role == inst.Superuser || l.Role == ReaderRole {
		return fmt.Errorf("setup login: role %q is not a branch role", l.Role)
	}
	verifier, err := scramVerifier(l.Password)
	if err != nil {
		return err
	}
	var disarmed []string
	cfg, err := pgx.ParseConfig(inst.ConnString(inst.Superuser, maintenanceDB(appDB)))
	if err != nil {
		return err
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if r, ok := strings.CutPrefix(n.Message, "pgtwin disarmed role "); ok {
			disarmed = append(disarmed, r)
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to branch: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// One round trip: a fresh clone's first statements are the slow part of
	// making a branch. Every name is qualified although the session's
	// search_path is pinned, so the block is safe read on its own.
	const attrs = "LOGIN NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS CREATEDB"
	sql := `DO $pgtwin$
DECLARE r record;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) ` + lit(l.Role) + `) THEN
    EXECUTE pg_catalog.format('ALTER ROLE %I ` + attrs + ` PASSWORD %L', ` + lit(l.Role) + `, ` + lit(verifier) + `);
    IF NOT pg_catalog.pg_has_role(` + lit(l.Role) + `, ` + lit(l.MemberOf) + `, 'MEMBER') THEN
      EXECUTE pg_catalog.format('GRANT %I TO %I', ` + lit(l.MemberOf) + `, ` + lit(l.Role) + `);
    END IF;
  ELSE
    EXECUTE pg_catalog.format('CREATE ROLE %I ` + attrs + ` PASSWORD %L IN ROLE %I', ` + lit(l.Role) + `, ` + lit(verifier) + `, ` + lit(l.MemberOf) + `);
  END IF;
  FOR r IN SELECT a.rolname::text AS name, (a.rolsuper OR a.rolcreaterole OR a.rolreplication
             OR (a.rolbypassrls AND a.rolname OPERATOR(pg_catalog.<>) ` + lit(ReaderRole) + `)) AS priv
           FROM pg_catalog.pg_authid a
           WHERE a.oid OPERATOR(pg_catalog.<>) 10
             AND a.rolname OPERATOR(pg_catalog.<>) ` + lit(l.Role) + `
             AND (a.rolsuper OR a.rolcreaterole OR a.rolreplication OR a.rolbypassrls OR a.rolcanlogin OR a.rolpassword IS NOT NULL) LOOP
    EXECUTE pg_catalog.format('ALTER ROLE %I NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS NOLOGIN PASSWORD NULL', r.name);
    IF r.priv THEN
      RAISE NOTICE 'pgtwin disarmed role %', r.name;
    END IF;
  END LOOP;
  FOR r IN SELECT g.rolname::text AS grp, m.rolname::text AS mem
           FROM pg_catalog.pg_auth_members am
           JOIN pg_catalog.pg_authid g ON g.oid OPERATOR(pg_catalog.=) am.roleid
           JOIN pg_catalog.pg_authid m ON m.oid OPERATOR(pg_catalog.=) am.member
           WHERE g.oid OPERATOR(pg_catalog.<) ` + fmt.Sprint(firstNormalOID) + `
             AND m.oid OPERATOR(pg_catalog.>=) ` + fmt.Sprint(firstNormalOID) + `
             AND NOT (m.rolname OPERATOR(pg_catalog.=) ` + lit(ReaderRole) + ` AND g.rolname OPERATOR(pg_catalog.=) 'pg_read_all_data') LOOP
    EXECUTE pg_catalog.format('REVOKE %I FROM %I CASCADE', r.grp, r.mem);
    RAISE NOTICE 'pgtwin disarmed role % (member of %)', r.mem, r.grp;
  END LOOP;
END
$pgtwin$`
	if _, err := conn.Exec(ctx, sql); err != nil {
		// The statement holds only a verifier, but keep it out of errors.
		return fmt.Errorf("branch role %s: %w", l.Role, redactSQL(err))
	}
	for _, r := range disarmed {
		e.log.Warn().Str(logkey.Volume, inst.ID).Str(logkey.Role, r).
			Msg("disarmed a privileged role the daemon did not make (superuser, createrole, replication, bypassrls or a pg_* role): it cannot log in to this branch")
	}
	return nil
}

// ReaderConnString is a connection string for the leak scan into db of
// inst, as ReaderRole over the unix socket. The role gets a fresh random
// password once per instance and daemon run, valid for an hour from each
// call; a branch owner never sees it, and it is useless outside that hour.
func (e *Engine) ReaderConnString(ctx context.Context, inst *Instance, db string) (string, error) {
	e.readerMu.Lock()
	defer e.readerMu.Unlock()
	pw := e.readerPw[inst.ID]
	if pw == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		pw = hex.EncodeToString(b)
	}
	verifier, err := scramVerifier(pw)
	if err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, maintenanceDB(db)))
	if err != nil {
		return "", fmt.Errorf("connect for the scan role: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	const attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS"
	sql := `DO $pgtwin$
DECLARE r record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) ` + lit(ReaderRole) + `) THEN
    EXECUTE pg_catalog.format('CREATE ROLE %I ` + attrs + `', ` + lit(ReaderRole) + `);
  END IF;
  -- Whatever a clone's copy of the role was made into, it is armed with
  -- exactly this: its attributes, no settings, one membership.
  EXECUTE pg_catalog.format('ALTER ROLE %I RESET ALL', ` + lit(ReaderRole) + `);
  FOR r IN SELECT d.datname::text AS db FROM pg_catalog.pg_db_role_setting s
           JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.setdatabase
           JOIN pg_catalog.pg_authid m ON m.oid OPERATOR(pg_catalog.=) s.setrole
           WHERE m.rolname OPERATOR(pg_catalog.=) ` + lit(ReaderRole) + ` LOOP
    EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I RESET ALL', ` + lit(ReaderRole) + `, r.db);
  END LOOP;
  FOR r IN SELECT g.rolname::text AS grp FROM pg_catalog.pg_auth_members am
           JOIN pg_catalog.pg_authid g ON g.oid OPERATOR(pg_catalog.=) am.roleid
           JOIN pg_catalog.pg_authid m ON m.oid OPERATOR(pg_catalog.=) am.member
           WHERE m.rolname OPERATOR(pg_catalog.=) ` + lit(ReaderRole) + `
             AND g.rolname OPERATOR(pg_catalog.<>) 'pg_read_all_data' LOOP
    EXECUTE pg_catalog.format('REVOKE %I FROM %I CASCADE', r.grp, ` + lit(ReaderRole) + `);
  END LOOP;
  EXECUTE pg_catalog.format('ALTER ROLE %I ` + attrs + ` PASSWORD %L VALID UNTIL %L', ` + lit(ReaderRole) + `, ` + lit(verifier) + `,
    (pg_catalog.now() OPERATOR(pg_catalog.+) interval '1 hour')::text);
  EXECUTE pg_catalog.format('GRANT pg_read_all_data TO %I', ` + lit(ReaderRole) + `);
END
$pgtwin$`
	if _, err := conn.Exec(ctx, sql); err != nil {
		return "", fmt.Errorf("scan role: %w", redactSQL(err))
	}
	e.readerPw[inst.ID] = pw
	return inst.ConnString(ReaderRole, db) + " password=" + pw, nil
}

// lit is a SQL string literal (standard_conforming_strings is on in every
// cluster pgtwin makes).
func lit(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// redactSQL keeps a failed statement's text (which may hold a verifier) out
// of the error: the server's message, code and position are enough.
func redactSQL(err error) error {
	if pe, ok := err.(*pgconn.PgError); ok {
		return fmt.Errorf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	return err
}
