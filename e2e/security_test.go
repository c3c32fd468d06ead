package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/internal/sample"
	"github.com/pgtwin/pgtwin/twin/api"
)

// TestSecurity is the adversarial suite of issue 10: a branch owner plants
// every trap she can think of in her own branch, then makes the daemon work
// on it; no trap may ever run as a superuser, no role or file may appear, and
// another user's branch stays out of her reach by CLI, raw HTTP, TCP and the
// file system.
func TestSecurity(t *testing.T) {
	src := startShop(t, 40)
	d := startSyncDaemon(t, src, syncOpts{})
	securityScenario(t, d, src, "shop", true)
}

// TestSecurityPostgresDatabase is the same attack where the source's database
// is "postgres" (RDS's default), so her branch's database is the one the
// daemon uses for cluster-wide work, on a driver whose snapshots of a
// running branch need a backup session (reflink: pg_backup_start).
func TestSecurityPostgresDatabase(t *testing.T) {
	src := pgtest.Start(t, pgtest.Options{})
	src.Exec(t, "postgres", sample.Luhn+sample.Schema)
	src.Exec(t, "postgres", sample.Data(40))
	key := filepath.Join(t.TempDir(), "mask.key")
	extra := syncConfig(t, src, key, syncOpts{})
	if !strings.Contains(extra, src.ConnString("shop")) {
		t.Fatalf("sync config does not hold the source URL %s:\n%s", src.ConnString("shop"), extra)
	}
	extra = strings.Replace(extra, src.ConnString("shop"), src.ConnString("postgres"), 1)
	d := startDaemon(t, daemonOpts{Driver: "reflink", Extra: extra})
	securityScenario(t, d, src, "postgres", false)
}

// securityScenario plants the traps and runs the daemon's operations; full
// adds the operations that do not depend on the database's name or the
// driver (listing, status, suspend, sync, the probes), which one run covers.
func securityScenario(t *testing.T, d *daemon, src *pgtest.Cluster, srcDB string, full bool) {
	tag := fmt.Sprintf("%08x", rand.Uint32())
	d.syncOK(t)
	if st := d.status(t); st.Main.Database != srcDB {
		t.Fatalf("main's database is %q, want the source's %q", st.Main.Database, srcDB)
	}
	mallory := ensureUser(t, "e2emallory", socketGroup)
	victim := ensureUser(t, "e2evictim", socketGroup)
	admin := ensureUser(t, "e2esecadm", socketGroup, adminGroup)
	t.Cleanup(func() {
		for _, pat := range []string{"/tmp/pgtwin-pwned-" + tag + "*", "/tmp/pgtwin-stolen-" + tag + "*"} {
			fs, _ := filepath.Glob(pat)
			for _, f := range fs {
				os.Remove(f)
			}
		}
	})

	v := d.create(t, victim, "victim/secret")
	marker := "VICTIM-MARKER-" + tag
	execURI(t, v.ConnectionURI, "CREATE TABLE public.marker (secret text); INSERT INTO public.marker VALUES ('"+marker+"')")
	// A snapshot of the victim's branch: the parent of her child.
	vc := d.create(t, victim, "victim/child", "--parent", "victim/secret")
	a := d.create(t, mallory, "mallory/lair")
	au, _ := url.Parse(a.ConnectionURI)
	herRole, db := au.User.Username(), strings.TrimPrefix(au.Path, "/")
	herPW, _ := au.User.Password()
	vi := d.instanceOn(t, v.Port)
	plan := trapPlan{Tag: tag, Role: herRole, DB: db, Steal: fmt.Sprintf(
		"/usr/bin/psql -X -h %s -p %d -U %s -d %s -Atc 'SELECT secret FROM public.marker' > /tmp/pgtwin-stolen-%s 2>&1",
		vi.SockDir, vi.Port, bootstrapSuper, db, tag)}
	ev := newTrapEvidence(t, d, tag)
	ev.collect("setup")

	// Phase A: the traps, over her own URL with her password.
	conn, err := userConn(a.ConnectionURI)
	if err != nil {
		t.Fatalf("connect to her branch as %s: %v", herRole, err)
	}
	plantAll(t, conn, plan.recorder(), true)
	plantAll(t, conn, plan.shadows("public"), true)
	for _, s := range []string{bootstrapSuper, "pgtwin_scan", "pgtwin_owner"} {
		// Schemas named after the daemon's roles come first in "$user".
		plantAll(t, conn, []string{"CREATE SCHEMA " + quoteIdent(s)}, true)
		if f := plantAll(t, conn, plan.shadows(s), false); len(f) > 0 {
			t.Logf("in schema %s, %d shadows could not be made, first: %s", s, len(f), f[0])
		}
	}
	plantAll(t, conn, plan.tableTraps(), true)
	// A raw email only she can see: a scan blind to it misses a leak.
	raw := strs(t, connectT(t, src.ConnString(srcDB)), "SELECT email FROM customers ORDER BY id LIMIT 1")[0]
	plantAll(t, conn, []string{
		"CREATE TABLE public.hidden_pii (note text)",
		"INSERT INTO public.hidden_pii VALUES (" + quoteLit("write to "+raw) + ")",
		"ALTER TABLE public.hidden_pii ENABLE ROW LEVEL SECURITY",
		"ALTER TABLE public.hidden_pii FORCE ROW LEVEL SECURITY",
		"CREATE POLICY only_me ON public.hidden_pii USING (current_user = " + quoteLit(herRole) + ")",
	}, true)
	plantAll(t, conn, plan.searchPaths(), true)
	for _, s := range plan.forbidden() {
		if _, err := conn.Exec(context.Background(), s); err == nil {
			t.Errorf("HOLE: a branch owner may run: %s", s)
		} else {
			t.Logf("refused to her, as it should be: %.90s: %v", s, err)
		}
	}
	conn.Close(context.Background())
	if db != "postgres" {
		// The maintenance database, where the daemon's own sessions go.
		pu := *au
		pu.Path = "/postgres"
		if pc, err := userConn(pu.String()); err != nil {
			t.Logf("she cannot even connect to database postgres: %v", err)
		} else {
			for _, s := range []string{"CREATE TABLE public.pgtwin_x (a int)", "CREATE SCHEMA " + bootstrapSuper,
				"CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql AS 'SELECT $1'", "ALTER DATABASE postgres SET search_path = public, pg_catalog"} {
				if _, err := pc.Exec(context.Background(), s); err == nil {
					t.Errorf("HOLE: a branch owner may, in database postgres: %s", s)
				}
			}
			pc.Close(context.Background())
		}
	}
	// The traps work: her own session, with her search_path, falls in.
	if sc, err := connect(t, a.ConnectionURI); err != nil {
		t.Fatalf("connect to her branch: %v", err)
	} else {
		var n int64
		if err := sc.QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE rolname !~ '^x'").Scan(&n); err != nil {
			t.Fatalf("trap self-test: %v", err)
		}
		sc.Close(context.Background())
	}
	ev.collect("self-test")
	if ev.count("self-test", herRole) == 0 {
		t.Fatalf("the traps did not fire in her own session: the suite would detect nothing (server logs under %s)", ev.logDir)
	}

	run := func(op string, u osUser, args ...string) result {
		t.Helper()
		r := d.cli(u, args...)
		if r.code != 0 {
			t.Errorf("%s as %s failed (a hostile branch must not break daemon operations): %s", op, u.Name, r)
		}
		ev.collect(op)
		return r
	}
	create := func(op string, u osUser, name string, flags ...string) (api.Branch, bool) {
		t.Helper()
		r := run(op, u, append([]string{"branches", "create", name, "-o", "json"}, flags...)...)
		var b api.Branch
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &b) != nil {
			return b, false
		}
		return b, true
	}
	maskCheck := func(op string, u osUser, target string) api.MaskCheck {
		t.Helper()
		args := []string{"mask", "check"}
		if target != "" {
			args = append(args, target)
		}
		r := d.cli(u, append(args, "-o", "json")...)
		var res api.MaskCheck
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || (r.code != 0 && r.code != 1) || res.Target == "" {
			t.Errorf("%s as %s: the check did not run (a hostile branch must not break it): %s", op, u.Name, r)
		}
		ev.collect(op)
		return res
	}
	sawHidden := func(res api.MaskCheck) bool {
		for _, f := range res.Findings {
			if f.Table == "hidden_pii" {
				return true
			}
		}
		return false
	}

	// Every daemon operation that touches her branch.
	maskCheck("mask check lair (owner)", mallory, "mallory/lair")
	if res := maskCheck("mask check lair (admin)", admin, "mallory/lair"); !sawHidden(res) {
		t.Errorf("mask check by an admin misses the raw email she hid behind a row security policy (findings %+v): the scan role does not bypass RLS", res.Findings)
	}
	if full {
		maskCheck("mask check lair (root)", root, "mallory/lair")
		maskCheck("mask check main (owner)", mallory, "")
	}
	child, haveChild := create("create child of lair", mallory, "mallory/child", "--parent", "mallory/lair")
	if haveChild {
		maskCheck("mask check child", mallory, "mallory/child")
	}
	if full {
		run("list", mallory, "branches", "list", "-o", "json")
		run("list --tree", mallory, "branches", "list", "--tree")
		run("get", mallory, "branches", "get", "mallory/lair", "-o", "json")
		run("cs", mallory, "cs", "mallory/lair")
		run("status (owner)", mallory, "status", "-o", "json")
		run("status (root)", root, "status", "-o", "json")
		run("snapshots create", root, "snapshots", "create", "-o", "json")
		run("snapshots list", mallory, "snapshots", "list", "-o", "json")
	}
	if haveChild {
		// Restore: a branch from the snapshot her child was made of.
		if _, ok := create("restore from a snapshot of lair", mallory, "mallory/restored", "--parent", child.Snapshot); ok {
			maskCheck("mask check restored", mallory, "mallory/restored")
		}
	}
	if full {
		run("suspend lair", mallory, "branches", "suspend", "mallory/lair")
		run("resume lair", mallory, "branches", "resume", "mallory/lair")
		run("suspend lair again", mallory, "branches", "suspend", "mallory/lair")
		if n := queryInt(t, a.ConnectionURI, "SELECT 1"); n != 1 {
			t.Errorf("her URL did not wake her branch")
		}
		ev.collect("wake lair by connecting")
	}
	if haveChild {
		if full {
			run("suspend child (admin)", admin, "branches", "suspend", "mallory/child")
			run("resume child (admin)", admin, "branches", "resume", "mallory/child")
		}
		run("reset child", mallory, "branches", "reset", "mallory/child", "-o", "json")
	}
	if full {
		run("sync now", root, "sync", "now", "--wait")
	}
	d.sweepRoles(t, ev, "after phase A", herRole, tag, nil)

	// Probes of the victim's branch, while her traps are in place.
	if full {
		probeVictim(t, d, mallory, herRole, herPW, v, a, marker)
		probeVictimSnapshot(t, d, mallory, vc.Snapshot, v.ConnectionURI)
	}

	// Phase B: an escalation the daemon must clean up in every clone (as if
	// she had got it some other way), and settings meant to break the
	// daemon's own sessions.
	li := d.instanceOn(t, a.Port)
	rc := rootConn(t, li, "postgres")
	role := quoteIdent(herRole)
	for _, s := range []string{
		"CREATE ROLE rogue_" + tag + " SUPERUSER LOGIN PASSWORD " + quoteLit("rogue-"+tag),
		"CREATE ROLE rogue2_" + tag + " LOGIN CREATEROLE REPLICATION BYPASSRLS PASSWORD " + quoteLit("rogue-"+tag),
		"GRANT pg_execute_server_program, pg_read_server_files, pg_write_server_files TO rogue2_" + tag,
		"GRANT pg_execute_server_program, pg_read_server_files, pg_write_server_files, pg_read_all_data TO " + role,
		"ALTER ROLE " + role + " CREATEROLE REPLICATION BYPASSRLS",
		// The daemon's own scan role, as a superuser with a password she knows.
		"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgtwin_scan') THEN CREATE ROLE pgtwin_scan; END IF; END $$",
		"ALTER ROLE pgtwin_scan SUPERUSER LOGIN PASSWORD " + quoteLit("rogue-"+tag) + " VALID UNTIL 'infinity'",
		"GRANT pg_execute_server_program TO pgtwin_scan",
		"ALTER ROLE pgtwin_scan SET search_path = public, pg_catalog",
	} {
		if _, err := rc.Exec(context.Background(), s); err != nil {
			t.Fatalf("simulate an escalation in her branch: %s: %v", s, err)
		}
	}
	rc.Close(context.Background())
	conn, err = userConn(a.ConnectionURI)
	if err != nil {
		t.Fatalf("connect to her branch: %v", err)
	}
	must, may := plan.hostileSettings()
	plantAll(t, conn, must, true)
	for _, f := range plantAll(t, conn, may, false) {
		t.Logf("setting refused to her: %s", f)
	}
	conn.Close(context.Background())

	// The clone is made before any check re-arms the scan role in lair.
	child2, haveChild2 := create("B: create child2 of lair", mallory, "mallory/child2", "--parent", "mallory/lair")
	if haveChild2 {
		d.checkNormalized(t, "mallory/child2", herRole, tag)
	}
	maskCheck("B: mask check lair (owner)", mallory, "mallory/lair")
	maskCheck("B: mask check lair (admin)", admin, "mallory/lair")
	if haveChild2 {
		if !strings.Contains(d.logTail(1<<20), "rogue_"+tag) {
			t.Errorf("role setup of mallory/child2 did not say in the daemon log that it disabled role rogue_%s", tag)
		}
		maskCheck("B: mask check child2", mallory, "mallory/child2")
		if full {
			run("B: suspend child2", mallory, "branches", "suspend", "mallory/child2")
			run("B: resume child2", mallory, "branches", "resume", "mallory/child2")
		}
		if r := run("B: reset child2", mallory, "branches", "reset", "mallory/child2", "-o", "json"); r.code == 0 {
			json.Unmarshal([]byte(r.stdout), &child2)
		}
		d.checkNormalized(t, "mallory/child2", herRole, tag)
		if _, ok := create("B: restore from a snapshot of lair", mallory, "mallory/restored2", "--parent", child2.Snapshot); ok {
			d.checkNormalized(t, "mallory/restored2", herRole, tag)
		}
	}
	if full {
		run("B: suspend lair", mallory, "branches", "suspend", "mallory/lair")
		run("B: resume lair", mallory, "branches", "resume", "mallory/lair")
	}
	if haveChild {
		run("B: reset child (admin)", admin, "branches", "reset", "mallory/child", "-o", "json")
		d.checkNormalized(t, "mallory/child", herRole, tag)
	}
	// A library that does not exist fails every session that loads it.
	conn, err = userConn(a.ConnectionURI)
	if err != nil {
		t.Fatalf("connect to her branch: %v", err)
	}
	plantAll(t, conn, []string{"ALTER DATABASE " + quoteIdent(db) + " SET local_preload_libraries = 'pgtwin_no_such_library'"}, true)
	conn.Close(context.Background())
	maskCheck("B2: mask check lair, local_preload_libraries set", mallory, "mallory/lair")
	if _, ok := create("B2: create child3 of lair, local_preload_libraries set", mallory, "mallory/child3", "--parent", "mallory/lair"); ok {
		d.checkNormalized(t, "mallory/child3", herRole, tag)
	}
	if full {
		run("B: snapshots create", root, "snapshots", "create", "-o", "json")
		run("B: sync now", root, "sync", "now", "--wait")
		run("B: status", mallory, "status", "-o", "json")
		run("B: list (admin)", admin, "branches", "list", "-o", "json")
	}
	d.sweepRoles(t, ev, "after phase B", herRole, tag, map[int]bool{a.Port: true})

	// Away with all of it; her branch is reset first (its clone is fresh).
	for _, n := range []string{"mallory/restored2", "mallory/restored", "mallory/child3", "mallory/child2", "mallory/child"} {
		if _, ok := find(d.list(t, root), n); ok {
			run("delete "+n, mallory, "branches", "delete", n)
		}
	}
	run("reset lair", mallory, "branches", "reset", "mallory/lair", "-o", "json")
	d.checkNormalized(t, "mallory/lair", herRole, tag)
	run("delete lair (admin)", admin, "branches", "delete", "mallory/lair")
	d.sweepRoles(t, ev, "at the end", herRole, tag, nil)

	// No program ran as the server's OS user, nothing was read.
	if fs, _ := filepath.Glob("/tmp/pgtwin-pwned-" + tag + "*"); len(fs) > 0 {
		t.Errorf("HOLE: COPY TO PROGRAM ran as the server's OS user: %v", fs)
	}
	if b, err := os.ReadFile("/tmp/pgtwin-stolen-" + tag); err == nil {
		if strings.Contains(string(b), marker) {
			t.Errorf("HOLE: a trap read the victim's marker row through the victim's unix socket")
		} else {
			t.Errorf("HOLE: a trap ran psql as the server's OS user (it did not get the marker: %.200s)", b)
		}
	}
	if n := queryInt(t, v.ConnectionURI, "SELECT count(*) FROM public.marker WHERE secret = '"+marker+"'"); n != 1 {
		t.Errorf("the victim's marker row is gone or changed: %d rows", n)
	}
	checkRunAs(t, d)
	ev.report()
	if len(ev.superOps) > 0 {
		t.Errorf("%d trap firings as a superuser:\n%s", len(ev.superOps), strings.Join(ev.superOps, "\n"))
	}
}

// sweepRoles looks into every running instance as root: no role the traps
// would make exists, no trap row says superuser, and (outside skip, the
// ports of instances the test itself escalated) no superuser but the
// bootstrap one.
func (d *daemon) sweepRoles(t *testing.T, ev *trapEvidence, stage, herRole, tag string, skip map[int]bool) {
	t.Helper()
	names := map[int]string{d.status(t).Main.Port: "main"}
	for _, b := range d.list(t, root) {
		names[b.Port] = b.Name
	}
	for _, i := range d.instances(t) {
		name := names[i.Port]
		if name == "" {
			name = "instance " + i.ID
		}
		conn := rootConn(t, i, "postgres")
		rs := roles(t, conn)
		for n, r := range rs {
			if strings.HasPrefix(n, "evil") && strings.Contains(n, tag) {
				t.Errorf("HOLE %s: %s has role %s (superuser %v), made by a trap", stage, name, n, r.Super)
			}
			if r.Super && n != bootstrapSuper && !skip[i.Port] {
				t.Errorf("HOLE %s: %s has superuser %s besides %s", stage, name, n, bootstrapSuper)
			}
		}
		if r, ok := rs[herRole]; ok && !skip[i.Port] && (r.Super || r.CreateRole || r.Replication || r.BRLS) {
			t.Errorf("HOLE %s: in %s her role %s has %+v", stage, name, herRole, r)
		}
		var dbs []string
		rows, err := conn.Query(context.Background(), "SELECT datname::text FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate")
		if err == nil {
			for rows.Next() {
				var s string
				rows.Scan(&s)
				dbs = append(dbs, s)
			}
			rows.Close()
		}
		conn.Close(context.Background())
		for _, db := range dbs {
			c := rootConn(t, i, db)
			var n int64
			err := c.QueryRow(context.Background(), `SELECT CASE WHEN pg_catalog.to_regclass('public.pgtwin_trap_log') IS NULL THEN 0
				ELSE 1 END`).Scan(&n)
			if err == nil && n == 1 {
				// Clones inherit their parent's rows: say each once.
				rows := strs(t, c, `SELECT DISTINCT trap || ' as ' || usr FROM public.pgtwin_trap_log WHERE super ORDER BY 1`)
				if len(rows) > 0 {
					t.Errorf("HOLE %s: %s/%s: the trap table has superuser rows: %s", stage, name, db, strings.Join(rows, "; "))
				}
			}
			c.Close(context.Background())
		}
	}
	ev.collect("sweep " + stage)
}

// checkNormalized: in a clone of her branch, no role the daemon did not make
// keeps SUPERUSER, LOGIN or the other powers, and her login role has no
// power or predefined role beyond what a branch owner gets.
func (d *daemon) checkNormalized(t *testing.T, name, herRole, tag string) {
	t.Helper()
	b, ok := find(d.list(t, root), name)
	if !ok {
		t.Errorf("%s is gone", name)
		return
	}
	if b.State != api.StateReady {
		if r := d.cli(root, "branches", "resume", name); r.code != 0 {
			t.Errorf("resume %s: %s", name, r)
			return
		}
	}
	conn := rootConn(t, d.instanceOn(t, b.Port), "postgres")
	defer conn.Close(context.Background())
	rs := roles(t, conn)
	for n, r := range rs {
		if r.Super && n != bootstrapSuper {
			t.Errorf("%s: %s is a superuser the daemon did not make", name, n)
		}
	}
	for _, n := range []string{"rogue_" + tag, "rogue2_" + tag} {
		if r, ok := rs[n]; ok && (r.Super || r.Login || r.CreateRole || r.Replication || r.BRLS) {
			t.Errorf("%s: role %s the daemon did not make is left with %+v", name, n, r)
		}
		if _, ok := rs[n]; ok {
			if m := predefinedMemberships(t, conn, n); len(m) > 0 {
				t.Errorf("%s: role %s the daemon did not make keeps predefined roles %v", name, n, m)
			}
		}
	}
	her, ok := rs[herRole]
	if !ok || !her.Login {
		t.Errorf("%s: her login role %s is missing or cannot log in: %+v", name, herRole, her)
	}
	if her.Super || her.CreateRole || her.Replication || her.BRLS {
		t.Errorf("%s: her role %s keeps %+v", name, herRole, her)
	}
	if m := predefinedMemberships(t, conn, herRole); len(m) > 0 {
		t.Errorf("%s: her role %s is a member of predefined roles %v", name, herRole, m)
	}
	if _, ok := rs["pgtwin_scan"]; ok {
		if m := predefinedMemberships(t, conn, "pgtwin_scan"); len(m) != 1 || m[0] != "pg_read_all_data" {
			t.Errorf("%s: pgtwin_scan is a member of %v, want pg_read_all_data only", name, m)
		}
	}
	u, _ := url.Parse(b.ConnectionURI)
	for _, n := range []string{"rogue_" + tag, "rogue2_" + tag, "pgtwin_scan"} {
		if err := tcpLogin(u.Hostname(), b.Port, n, "rogue-"+tag, "postgres"); err == nil {
			t.Errorf("%s: role %s logs in with the password it had in her branch", name, n)
		}
	}
}

// probeVictim: as mallory, every way in to the victim's branch fails.
func probeVictim(t *testing.T, d *daemon, mallory osUser, herRole, herPW string, v, a api.Branch, marker string) {
	t.Helper()
	vu, _ := url.Parse(v.ConnectionURI)
	vRole := vu.User.Username()
	vPW, _ := vu.User.Password()
	vdb := strings.TrimPrefix(vu.Path, "/")
	leaks := func(s string) bool {
		return strings.Contains(s, vPW) || strings.Contains(s, marker) || strings.Contains(s, "connection_uri\":\"postgres")
	}

	// The CLI.
	if bs := d.list(t, mallory); len(bs) == 0 || func() bool { _, ok := find(bs, v.Name); return ok }() {
		t.Errorf("her branches list shows %v", names(bs))
	}
	for _, args := range [][]string{
		{"branches", "get", v.Name}, {"cs", v.Name}, {"branches", "reset", v.Name}, {"branches", "delete", v.Name},
		{"branches", "suspend", v.Name}, {"branches", "resume", v.Name}, {"branches", "protect", v.Name},
		{"mask", "check", v.Name}, {"branches", "create", "mallory/steal", "--parent", v.Name},
		{"branches", "get", "victim%2Fsecret"}, {"branches", "get", v.Name + "/"}, {"branches", "get", "./" + v.Name},
		{"branches", "get", "mallory/../" + v.Name}, {"branches", "get", strings.ToUpper(v.Name)},
		{"branches", "reset", v.Name + "/"}, {"branches", "delete", "mallory/lair/../../" + v.Name},
	} {
		r := d.cli(mallory, args...)
		if r.code == 0 {
			t.Errorf("HOLE: as mallory, %v on the victim's branch succeeded: %s", args, r)
		}
		if leaks(r.stdout + r.stderr) {
			t.Errorf("HOLE: as mallory, %v leaks the victim's password or data: %s", args, r)
		}
	}

	// Raw HTTP over the socket, odd encodings included.
	type req struct{ method, target, body string }
	var reqs []req
	for _, p := range []string{
		"victim/secret", "victim%2Fsecret", "victim%2fsecret", "victim%252Fsecret", "victim/secret/", "victim/secret//",
		"./victim/secret", "mallory/../victim/secret", "mallory/lair/../../victim/secret", "mallory%2F..%2Fvictim%2Fsecret",
		"victim/./secret", "%76ictim/secret", "victim/secret%00", "victim/secret%20", "VICTIM/SECRET", "victim/secret?x=1",
		"victim/secret#x",
	} {
		reqs = append(reqs, req{"GET", "/v1/branches/" + p, ""}, req{"get", "/v1/branches/" + p, ""},
			req{"DELETE", "/v1/branches/" + p, ""}, req{"PATCH", "/v1/branches/" + p, `{"protected":true}`})
		for _, act := range []string{"/reset", "%2Freset", "/suspend", "/resume", "/reset/"} {
			reqs = append(reqs, req{"POST", "/v1/branches/" + p + act, ""}, req{"post", "/v1/branches/" + p + act, ""})
		}
	}
	reqs = append(reqs,
		req{"GET", "//v1/branches/victim/secret", ""}, req{"GET", "/v1//branches/victim/secret", ""},
		req{"GET", "/v1/branches/../branches/victim/secret", ""}, req{"GET", "http://pgtwin/v1/branches/victim/secret", ""},
		req{"POST", "/v1/mask/check", `{"branch":"victim/secret"}`}, req{"POST", "/v1/mask/check", `{"branch":"victim%2Fsecret"}`},
		req{"POST", "/v1/mask/check", `{"branch":"./victim/secret"}`}, req{"POST", "/v1/mask/check", `{"branch":"victim/secret/"}`},
		req{"POST", "/v1/mask/check", `{"branch":"x","branch":"victim/secret"}`},
		req{"POST", "/v1/branches", `{"name":"mallory/steal","parent":"victim/secret"}`},
		req{"POST", "/v1/branches", `{"name":"mallory/steal2","parent":"victim%2Fsecret"}`},
		req{"POST", "/v1/branches", `{"name":"mallory/steal3","parent":"x","parent":"victim/secret"}`},
		req{"POST", "/v1/branches", `{"name":"victim/secret"}`},
	)
	codes := map[int]int{}
	for _, r := range reqs {
		code, out := d.rawHTTP(t, mallory, r.method, r.target, r.body)
		codes[code]++
		if code == 409 {
			t.Logf("%s %s %s: 409 tells her the name is taken: %.200s", r.method, r.target, r.body, out[strings.Index(out, "\r\n\r\n")+4:])
		}
		if code/100 == 2 {
			t.Errorf("HOLE: as mallory, %s %s %s answered %d: %.300s", r.method, r.target, r.body, code, out)
		}
		if leaks(out) {
			t.Errorf("HOLE: as mallory, %s %s leaks the victim's password or data: %.300s", r.method, r.target, out)
		}
	}
	for _, h := range []string{"X-Pgtwin-User: e2evictim", "X-Forwarded-User: root", "X-Remote-User: root", "Authorization: Basic cm9vdDo="} {
		code, out := d.rawHTTP(t, mallory, "GET", "/v1/branches/victim/secret", "", h)
		if code/100 == 2 || leaks(out) {
			t.Errorf("HOLE: header %q makes the daemon answer %d: %.300s", h, code, out)
		}
		if _, out := d.rawHTTP(t, mallory, "GET", "/v1/branches", "", h); strings.Contains(out, v.Name) {
			t.Errorf("HOLE: with header %q her list shows the victim's branch", h)
		}
		if _, out := d.rawHTTP(t, mallory, "GET", "/v1/status", "", h); !strings.Contains(out, `"caller":"e2emallory"`) {
			t.Errorf("with header %q the daemon does not take her for e2emallory: %.300s", h, out)
		}
	}
	t.Logf("%d raw HTTP probes of the victim's branch, answers by status: %v", len(reqs), codes)
	if b, ok := find(d.list(t, root), v.Name); !ok || b.State != api.StateReady || b.Protected {
		t.Errorf("the probes changed the victim's branch: %+v (found %v)", b, ok)
	}
	for _, n := range []string{"mallory/steal", "mallory/steal2", "mallory/steal3"} {
		if _, ok := find(d.list(t, root), n); ok {
			t.Errorf("HOLE: she made %s from the victim's branch", n)
			d.cli(root, "branches", "delete", n)
		}
	}

	// TCP, to the victim's port, with every role name.
	host := vu.Hostname()
	roleNames := []string{vRole, bootstrapSuper, "postgres", "pgtwin_scan", "pgtwin_owner", herRole, "root", "",
		strings.ToUpper(bootstrapSuper), bootstrapSuper + " ", "u_" + bootstrapSuper, "pgtwin-pg"}
	logins := 0
	for _, user := range roleNames {
		for _, pw := range []string{herPW, "", "x"} {
			for _, db := range []string{vdb, "postgres", "template1"} {
				if user == "" {
					continue // pgconn would use root's name: covered by "root" and the raw packets
				}
				logins++
				if err := tcpLogin(host, v.Port, user, pw, db); err == nil {
					t.Errorf("HOLE: TCP login to the victim's branch as %q (password %d chars) into %s succeeded", user, len(pw), db)
				}
			}
		}
	}
	// Hand-made startup packets: duplicate and empty user names.
	for _, port := range []int{v.Port, a.Port} {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		for _, kv := range [][]string{
			{"user", vRole, "user", bootstrapSuper, "database", vdb},
			{"user", bootstrapSuper, "user", vRole, "database", vdb},
			{"user", herRole, "user", bootstrapSuper, "database", "postgres"},
			{"user", bootstrapSuper, "user", herRole, "database", "postgres"},
			{"user", "", "database", vdb},
			{"database", vdb},
			{"user", bootstrapSuper, "database", "replication", "replication", "true"},
			{"user", bootstrapSuper, "database", vdb, "options", "-c role=" + vRole},
		} {
			got, err := rawStartup(addr, kv...)
			logins++
			if got == "auth-ok" {
				t.Errorf("HOLE: startup packet %q to port %d got in without a password", kv, port)
			}
			_ = err
		}
	}
	// Her own port must not take the daemon's roles either.
	for _, user := range []string{bootstrapSuper, "postgres", "pgtwin_scan", "pgtwin_owner", "root", "pgtwin-pg"} {
		for _, pw := range []string{herPW, ""} {
			logins++
			if err := tcpLogin(host, a.Port, user, pw, "postgres"); err == nil {
				t.Errorf("HOLE: TCP login to her own branch as %q succeeded", user)
			}
		}
	}
	for _, port := range []int{v.Port, a.Port} {
		for _, user := range []string{bootstrapSuper, "pgtwin_scan"} {
			logins++
			if err := tcpLoginSSL(host, port, user, herPW, "postgres", "prefer"); err == nil {
				t.Errorf("HOLE: TCP login (after an SSLRequest) to port %d as %q succeeded", port, user)
			}
		}
	}
	t.Logf("%d TCP login attempts, none may succeed", logins)

	// Main: no TCP listener at all.
	st := d.status(t)
	for _, h := range []string{"127.0.0.1", host} {
		addr := net.JoinHostPort(h, strconv.Itoa(st.Main.Port))
		c, err := net.Dial("tcp", addr)
		if err != nil {
			continue
		}
		c.Close()
		t.Errorf("main listens on TCP %s; it must listen on its unix socket only", addr)
		for _, user := range []string{bootstrapSuper, "postgres", "pgtwin_owner", "pgtwin_scan", herRole, vRole} {
			if err := tcpLogin(h, st.Main.Port, user, herPW, st.Main.Database); err == nil {
				t.Errorf("HOLE: TCP login to main as %q succeeded", user)
			}
		}
	}
	// Every instance's pg_hba: TCP only from the listen address, never the
	// bootstrap superuser.
	for _, pm := range postmasters(d.DataDir) {
		b, err := os.ReadFile(filepath.Join(pm.pgdata, "pg_hba.conf"))
		if err != nil {
			t.Errorf("read %s/pg_hba.conf: %v", pm.pgdata, err)
			continue
		}
		if m, line := hbaFirstMatch(string(b), bootstrapSuper, net.ParseIP("127.0.0.1")); m != "" && m != "reject" {
			t.Errorf("%s/pg_hba.conf takes %s over TCP: %q", pm.pgdata, bootstrapSuper, line)
		}
		if m, line := hbaFirstMatch(string(b), vRole, net.ParseIP("192.0.2.1")); m != "" && m != "reject" {
			t.Errorf("%s/pg_hba.conf takes TCP from anywhere: %q", pm.pgdata, line)
		}
	}

	// The file system, as her OS user.
	vi := d.instanceOn(t, v.Port)
	var victimData string
	for _, pm := range postmasters(d.DataDir) {
		if strings.Contains(pm.pgdata, vi.ID) {
			victimData = pm.pgdata
		}
	}
	fsProbes := [][2]string{
		{"ls", filepath.Join(d.DataDir, "run")},
		{"ls", vi.SockDir},
		{"dial", filepath.Join(vi.SockDir, fmt.Sprintf(".s.PGSQL.%d", vi.Port))},
		{"read", filepath.Join(d.DataDir, "log", vi.ID+".log")},
		{"ls", filepath.Join(d.DataDir, "state")},
	}
	if victimData != "" {
		fsProbes = append(fsProbes, [2]string{"ls", victimData})
	} else {
		t.Errorf("the victim's data directory (volume %s) is not among the running postmasters", vi.ID)
	}
	states, _ := filepath.Glob(filepath.Join(d.DataDir, "state", "*"))
	for _, s := range states {
		fsProbes = append(fsProbes, [2]string{"read", s})
	}
	for _, p := range fsProbes {
		if out, _, ok := probe(t, mallory, p[0], p[1], nil); ok {
			t.Errorf("HOLE: as mallory, %s %s works: %.200s", p[0], p[1], out)
		}
	}
}

// probeVictimSnapshot: the snapshot of the victim's branch is not hers to
// see, branch from or delete, by CLI or raw HTTP.
func probeVictimSnapshot(t *testing.T, d *daemon, mallory osUser, snap, victimURI string) {
	t.Helper()
	if snap == "" {
		t.Fatalf("the victim's child has no snapshot id")
	}
	pw, _ := func() (string, bool) { u, _ := url.Parse(victimURI); return u.User.Password() }()
	if r := d.must(mallory, "snapshots", "list", "-o", "json"); strings.Contains(r.stdout, snap) {
		t.Errorf("HOLE: her snapshots list shows the victim's snapshot %s", snap)
	}
	for _, args := range [][]string{
		{"branches", "create", "mallory/fromsnap", "--parent", snap},
		{"snapshots", "delete", snap},
	} {
		if r := d.cli(mallory, args...); r.code == 0 || strings.Contains(r.stdout+r.stderr, pw) {
			t.Errorf("HOLE: as mallory, %v on the victim's snapshot: %s", args, r)
		}
	}
	for _, r := range []struct{ method, target, body string }{
		{"POST", "/v1/branches", `{"name":"mallory/fromsnap2","parent":"` + snap + `"}`},
		{"DELETE", "/v1/snapshots/" + snap, ""},
		{"DELETE", "/v1/snapshots/" + url.PathEscape(snap) + "/", ""},
	} {
		if code, out := d.rawHTTP(t, mallory, r.method, r.target, r.body); code/100 == 2 {
			t.Errorf("HOLE: as mallory, %s %s %s answered %d: %.300s", r.method, r.target, r.body, code, out)
		}
	}
	for _, n := range []string{"mallory/fromsnap", "mallory/fromsnap2"} {
		if _, ok := find(d.list(t, root), n); ok {
			t.Errorf("HOLE: she made %s from the victim's snapshot", n)
			d.cli(root, "branches", "delete", n)
		}
	}
	if ss := d.must(root, "snapshots", "list", "-o", "json"); !strings.Contains(ss.stdout, snap) {
		t.Logf("root's snapshots list does not show %s either (fine if branch snapshots are not listed)", snap)
	}
}

// checkRunAs: the instances run as a dedicated OS user, not the distro's
// postgres (which owns its own cluster) and not root.
func checkRunAs(t *testing.T, d *daemon) {
	t.Helper()
	pms := postmasters(d.DataDir)
	if len(pms) == 0 {
		t.Errorf("no postmasters under %s", d.DataDir)
	}
	for _, pm := range pms {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pm.pid), "status"))
		if err != nil {
			continue
		}
		var uid string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
				uid = f[1]
			}
		}
		name := uid
		if u, err := user.LookupId(uid); err == nil {
			name = u.Username
		}
		if name == "postgres" || uid == "0" {
			t.Errorf("postmaster %d (%s) runs as %s; engine.run_as must be a dedicated user (pgtwin-pg)", pm.pid, pm.pgdata, name)
		}
	}
}
