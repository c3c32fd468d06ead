package engine_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/engine"
)

// TestSessionsIgnoreBranchOwnerSettings plays a branch owner who has done
// her worst to her database: settings that would redirect, stall or break a
// session that trusted them, and objects that shadow the catalog names and
// operators daemon SQL uses, each recording who ran it. The instance also
// carries roles made by someone who was superuser in a parent branch. The
// daemon's sessions, role setup and the scan role must run none of her code
// and leave no role with power.
func TestSessionsIgnoreBranchOwnerSettings(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "copy", t.TempDir())
	f.init("b")
	inst := f.start("b")
	c := connect(t, inst)
	for _, s := range []string{
		"CREATE ROLE pgtwin_owner NOLOGIN",
		"CREATE ROLE mallory LOGIN PASSWORD 'mallory-pw' IN ROLE pgtwin_owner",
		"CREATE DATABASE app OWNER pgtwin_owner",
		// Made by someone who was superuser in the parent branch.
		"CREATE ROLE evil_super SUPERUSER LOGIN PASSWORD 'evil-pw'",
		"CREATE ROLE mallory_old LOGIN CREATEROLE BYPASSRLS REPLICATION PASSWORD 'old-pw'",
		"GRANT pg_execute_server_program, pg_read_server_files TO mallory_old",
		// The scan role itself, made superuser with a password she knows.
		"CREATE ROLE pgtwin_scan SUPERUSER LOGIN PASSWORD 'scan-pw'",
		"GRANT pg_execute_server_program TO pgtwin_scan",
		"ALTER ROLE pgtwin_scan SET search_path = public",
	} {
		exec1(t, c, s)
	}
	// Mallory, as herself, in her database.
	m, err := pgx.Connect(ctx, inst.ConnString("mallory", "app")+" password=mallory-pw options='-c search_path=public'")
	if err != nil {
		t.Fatalf("mallory connects: %v", err)
	}
	defer m.Close(ctx)
	for _, s := range []string{
		"SET ROLE pgtwin_owner",
		"CREATE TABLE public.trap_log (who text, super bool)",
		"GRANT ALL ON public.trap_log TO PUBLIC",
		`CREATE FUNCTION public.trap() RETURNS boolean LANGUAGE plpgsql AS $$
		 BEGIN
		   INSERT INTO public.trap_log SELECT current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user;
		   RETURN true;
		 END $$`,
		"CREATE FUNCTION public.trap_ne(name, text) RETURNS boolean LANGUAGE sql AS 'SELECT public.trap()'",
		"CREATE OPERATOR public.!~ (LEFTARG = name, RIGHTARG = text, FUNCTION = public.trap_ne)",
		"CREATE FUNCTION public.trap_eq(name, name) RETURNS boolean LANGUAGE sql AS 'SELECT public.trap()'",
		"CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.trap_eq)",
		"CREATE FUNCTION public.format(text, VARIADIC text[]) RETURNS text LANGUAGE sql AS 'SELECT public.trap()::text'",
		"CREATE FUNCTION public.pg_has_role(name, name, text) RETURNS boolean LANGUAGE sql AS 'SELECT public.trap()'",
		"CREATE VIEW public.pg_roles AS SELECT r.* FROM pg_catalog.pg_roles r WHERE public.trap()",
		"CREATE VIEW public.pg_authid AS SELECT r.* FROM pg_catalog.pg_roles r WHERE public.trap()",
		"CREATE TABLE public.secrets (email text)",
		"INSERT INTO public.secrets VALUES ('x@example.com')",
		"ALTER TABLE public.secrets ENABLE ROW LEVEL SECURITY",
		"ALTER TABLE public.secrets FORCE ROW LEVEL SECURITY",
		"CREATE POLICY p ON public.secrets USING (public.trap())",
		"ALTER DATABASE app SET search_path = public, pg_catalog",
		"ALTER DATABASE app SET role = 'mallory'",
		"ALTER DATABASE app SET default_transaction_read_only = on",
		"ALTER DATABASE app SET statement_timeout = '1ms'",
		"ALTER DATABASE app SET local_preload_libraries = 'pwn'",
		"ALTER DATABASE app SET standard_conforming_strings = off",
		"ALTER DATABASE app SET client_min_messages = error",
		"ALTER DATABASE app SET idle_session_timeout = '1ms'",
	} {
		if _, err := m.Exec(ctx, s); err != nil {
			t.Fatalf("mallory: %s: %v", s, err)
		}
	}
	m.Close(ctx)

	// The daemon's sessions into her database see none of it.
	d, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, "app"))
	if err != nil {
		t.Fatalf("daemon session into the hostile database: %v", err)
	}
	var user, path, ro string
	if err := d.QueryRow(ctx, "SELECT current_user, current_setting('search_path'), current_setting('default_transaction_read_only') WHERE 'x'::name !~ 'y' AND 'a'::name = 'a'").Scan(&user, &path, &ro); err != nil {
		t.Fatalf("daemon query: %v", err)
	}
	d.Close(ctx)
	if user != inst.Superuser || path != "pg_catalog,pg_temp" || ro != "off" {
		t.Fatalf("daemon session ran as %q with search_path %q, read only %s; want %s, pinned, off", user, path, ro, inst.Superuser)
	}

	if err := f.e.SetupLogin(ctx, inst, "app", engine.Login{Role: "mallory", Password: "new-pw", MemberOf: "pgtwin_owner"}); err != nil {
		t.Fatalf("setup login: %v", err)
	}
	var scanLogin, scanSuper bool
	if err := c.QueryRow(ctx, "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1", engine.ReaderRole).Scan(&scanLogin, &scanSuper); err != nil || scanLogin || scanSuper {
		t.Fatalf("a clone's scan role after setup: login %v, super %v (%v); want neither until a scan arms it", scanLogin, scanSuper, err)
	}
	rs, err := f.e.ReaderConnString(ctx, inst, "app")
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	r, err := pgx.Connect(ctx, rs)
	if err != nil {
		t.Fatalf("reader connects: %v", err)
	}
	var n int
	// A pause between statements: idle_session_timeout is hers to set.
	time.Sleep(50 * time.Millisecond)
	if err := r.QueryRow(ctx, "SELECT count(*) FROM public.secrets").Scan(&n); err != nil || n != 1 {
		t.Fatalf("reader reads her table: %d rows, %v; want 1 (RLS bypassed)", n, err)
	}
	var rsuper, rlogin bool
	if err := r.QueryRow(ctx, "SELECT rolsuper, current_user = $1 FROM pg_catalog.pg_roles WHERE rolname = current_user", engine.ReaderRole).Scan(&rsuper, &rlogin); err != nil || rsuper || !rlogin {
		t.Fatalf("reader is super=%v, is %s=%v (%v)", rsuper, engine.ReaderRole, rlogin, err)
	}
	r.Close(ctx)

	c = connect(t, inst)
	a, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, "app"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	rows, err := a.Query(ctx, "SELECT who, super FROM public.trap_log")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var who string
		var super bool
		if err := rows.Scan(&who, &super); err != nil {
			t.Fatal(err)
		}
		t.Errorf("a trap ran as %s (superuser %v)", who, super)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}

	// No role but the bootstrap superuser and the scan role kept power.
	type role struct {
		name                                   string
		super, createrole, repl, bypass, login bool
		pw                                     bool
	}
	roles, err := c.Query(ctx, `SELECT rolname, rolsuper, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, rolpassword IS NOT NULL
		FROM pg_authid WHERE oid >= 16384 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]role{}
	for roles.Next() {
		var x role
		if err := roles.Scan(&x.name, &x.super, &x.createrole, &x.repl, &x.bypass, &x.login, &x.pw); err != nil {
			t.Fatal(err)
		}
		got[x.name] = x
	}
	for _, name := range []string{"evil_super", "mallory_old"} {
		x := got[name]
		if x.super || x.createrole || x.repl || x.bypass || x.login || x.pw {
			t.Errorf("role %s kept power: %+v", name, x)
		}
	}
	if x := got["mallory"]; x.super || !x.login || !x.pw {
		t.Errorf("branch login role: %+v; want a login with a password and no superuser", x)
	}
	var members []string
	mrows, err := c.Query(ctx, `SELECT m.rolname || ' in ' || g.rolname FROM pg_auth_members am
		JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
		WHERE g.oid < 16384 AND m.oid >= 16384 AND m.rolname <> $1`, engine.ReaderRole)
	if err != nil {
		t.Fatal(err)
	}
	for mrows.Next() {
		var s string
		if err := mrows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		members = append(members, s)
	}
	var builtin int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member
		WHERE m.rolname = 'pg_monitor'`).Scan(&builtin); err != nil || builtin == 0 {
		t.Errorf("pg_monitor lost its built-in memberships (%d, %v): role setup must leave predefined roles alone", builtin, err)
	}
	var scanIn []string
	if err := c.QueryRow(ctx, `SELECT coalesce(array_agg(g.rolname::text), '{}') FROM pg_auth_members am
		JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE m.rolname = $1`, engine.ReaderRole).Scan(&scanIn); err != nil {
		t.Fatal(err)
	}
	if len(scanIn) != 1 || scanIn[0] != "pg_read_all_data" {
		t.Errorf("scan role is a member of %v; want only pg_read_all_data", scanIn)
	}
	if len(members) > 0 {
		t.Errorf("predefined-role memberships left: %s", strings.Join(members, ", "))
	}

	// Her new password works over TCP; the old roles' do not; the bootstrap
	// superuser and the scan role are refused over TCP whatever they hold.
	rpw := rs[strings.LastIndex(rs, "password=")+len("password="):]
	for _, l := range []struct {
		user, pw string
		ok       bool
	}{
		{"mallory", "new-pw", true},
		{"mallory", "mallory-pw", false},
		{"evil_super", "evil-pw", false},
		{"mallory_old", "old-pw", false},
		{inst.Superuser, "", false},
		{engine.ReaderRole, rpw, false},
		{engine.ReaderRole, "scan-pw", false},
	} {
		tc, err := pgx.Connect(ctx, "host=127.0.0.1 port="+strconv.Itoa(inst.Port)+" dbname=postgres sslmode=disable user="+l.user+" password='"+l.pw+"'")
		if err == nil {
			tc.Close(ctx)
		}
		if (err == nil) != l.ok {
			t.Errorf("TCP login as %s: err %v, want ok=%v", l.user, err, l.ok)
		}
	}
}
