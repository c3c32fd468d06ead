package twinsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// The least-privilege source: tables that belong to app_owner (NOLOGIN),
// and pgtwin_ro, a role that owns nothing and is not a superuser, logging
// in over TCP with a scram-sha-256 password read from a password file.
const (
	privRole     = "pgtwin_ro"
	privPassword = "Sesame-0pen_scram"
)

// privSchema adds to the shop what the selection must handle: a schema
// excluded whole and a partitioned table.
const privSchema = `
CREATE SCHEMA audit;
CREATE TABLE audit.log (id bigserial PRIMARY KEY, what text);
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, kind text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
`

// newPrivEnv starts a scram source whose objects app_owner owns, the role
// pgtwin_ro with no grants at all, and a twin. The follower it makes
// connects as pgtwin_ro.
func newPrivEnv(t *testing.T) *logicalEnv {
	t.Helper()
	src := pgtest.Start(t, pgtest.Options{Logical: true, SCRAM: true, Databases: []string{"app"}})
	src.Exec(t, "app", `CREATE ROLE app_owner NOLOGIN;
		GRANT CREATE ON SCHEMA public TO app_owner;
		GRANT CREATE ON DATABASE app TO app_owner;
		CREATE EXTENSION citext;
		CREATE ROLE `+privRole+` LOGIN PASSWORD '`+privPassword+`';
		REVOKE ALL ON DATABASE app FROM PUBLIC;
		SET ROLE app_owner;`+
		strings.Replace(shopSchema, "CREATE EXTENSION citext;", "", 1)+privSchema+
		fmt.Sprintf(shopFill, 50)+`
		INSERT INTO events SELECT i, '2024-06-01'::date + i % 400, 'k' || i % 3 FROM generate_series(1, 200) i;
		INSERT INTO audit.log (what) SELECT 'entry ' || i FROM generate_series(1, 20) i;`)
	if got := query[string](t, src, "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = '"+privRole+"'"); got != "SCRAM-SHA-256$" {
		t.Fatalf("the role's password is stored as %q..., want a SCRAM-SHA-256 verifier", got)
	}
	tgt := pgtest.Start(t, pgtest.Options{})
	tgt.Exec(t, "postgres", "CREATE ROLE pgtwin_owner NOLOGIN")
	tgt.Exec(t, "postgres", "CREATE DATABASE app OWNER pgtwin_owner")
	spill, err := os.MkdirTemp("", "pgtwin-spill-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(spill) })
	rules, err := anonymize.ParseRules(map[string]map[string]any{
		"public.customers.email":      {"transform": "email"},
		"public.customers.full_name":  {"transform": "name"},
		"public.customers.phone":      {"transform": "phone"},
		"public.addresses.street":     {"transform": "address"},
		"public.payments.card_number": {"transform": "partial", "keep_last": 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &logicalEnv{t: t, src: src, tgt: tgt, sel: selection{ExcludeTables: []string{"audit.*"}},
		rules: rules, policy: anonymize.PolicyMask, spill: spill,
		srcURL: fmt.Sprintf("postgres://%s@127.0.0.1:%d/app?sslmode=disable", privRole, src.Port)}
}

// privFollower is e.follower() as pgtwin_ro, with the publication as
// sync.publication says (empty: pgtwin manages "pgtwin").
func (e *logicalEnv) privFollower(publication string) *follower {
	f := e.follower()
	pw := filepath.Join(e.spill, "source.pw")
	if err := os.WriteFile(pw, []byte(privPassword+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	f.Source.PasswordFile = pw
	f.Publication, f.UsePublication = publication, publication != ""
	f.Plan = planSynced(f, e.rules, e.policy, testKey)
	return f
}

// privDump runs a dump sync as pgtwin_ro into a fresh twin database and
// returns its error.
func (e *logicalEnv) privDump(ctx context.Context) error {
	e.tgt.Exec(e.t, "postgres", "DROP DATABASE IF EXISTS app WITH (FORCE)")
	e.tgt.Exec(e.t, "postgres", "CREATE DATABASE app OWNER pgtwin_owner")
	f := e.privFollower("")
	d := &dumper{Source: f.Source, Selection: e.sel, Plan: anonymizePlan(e.rules, e.policy, testKey, e.sel),
		Backoff: f.Backoff, Log: f.Log, TempDir: e.spill}
	return d.Run(ctx, target{ConnString: e.tgt.ConnString("app"), BinDir: e.tgt.Bin}, nil)
}

// privFill runs a logical initial copy as pgtwin_ro and returns its error.
func (e *logicalEnv) privFill(ctx context.Context, publication string) error {
	f := e.privFollower(publication)
	return f.Rebuild(ctx, func(ctx context.Context, tgt target) error { return f.Fill(ctx, tgt, nil) })
}

// bothModes: a dump sync and a logical sync (initial copy, then a
// workload streamed) as pgtwin_ro both give the masked source. The
// workload touches the excluded audit.log, which a FOR ALL TABLES
// publication sends and the stream must drop. It returns the follower,
// stopped.
func (e *logicalEnv) bothModes(t *testing.T, publication string) *follower {
	ctx := context.Background()
	if err := e.privDump(ctx); err != nil {
		t.Fatalf("dump sync as %s: %v", privRole, err)
	}
	e.equal()

	f := e.privFollower(publication)
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	waitState(t, f, stateStreaming, 2*time.Minute)
	e.src.Exec(t, "app", `SET ROLE app_owner;
		INSERT INTO customers (email, full_name, phone) VALUES ('streamed@example.com', 'Streamed Person', '+1 555 0000001');
		UPDATE orders SET status = 'shipped' WHERE id % 3 = 0;
		DELETE FROM payments WHERE id % 5 = 0;
		INSERT INTO events VALUES (9001, '2025-02-02', 'late');
		INSERT INTO audit.log (what) VALUES ('excluded, never applied');
		TRUNCATE audit.log;`)
	e.sync(time.Minute)
	if st := f.Status(); st.State != stateStreaming {
		t.Fatalf("follower as %s: %+v", privRole, st)
	}
	var synced selection
	f.mu.Lock()
	if f.synced != nil {
		synced = *f.synced
	}
	f.mu.Unlock()
	equalTwin(t, e.src, e.tgt, synced, e.rules, e.policy)
	if n := query[int64](t, e.tgt, "SELECT count(*) FROM audit.log"); n != 0 {
		t.Errorf("the excluded audit.log has %d rows in the twin", n)
	}
	if n := query[int64](t, e.tgt, "SELECT count(*) FROM customers WHERE email = 'streamed@example.com'"); n != 0 {
		t.Errorf("the streamed customer reached the twin unmasked")
	}
	var lsn string
	if err := f.Snapshot(ctx, func(_ context.Context, l string) error { lsn = l; return nil }); err != nil || lsn == "" {
		t.Errorf("Snapshot as %s = %v (lsn %q)", privRole, err, lsn)
	}
	f.Stop()
	return f
}

// dropSlot is `sync stop --drop-slot`'s source side: the slot goes, a
// configured publication stays.
func (e *logicalEnv) dropSlot(t *testing.T, f *follower) {
	if err := f.DropSlot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := query[int64](t, e.src, "SELECT count(*) FROM pg_replication_slots"); n != 0 {
		t.Errorf("%d slots left after DropSlot", n)
	}
	if f.UsePublication {
		if n := query[int64](t, e.src, "SELECT count(*) FROM pg_publication WHERE pubname = "+quoteLiteral(f.Publication)); n != 1 {
			t.Errorf("DropSlot removed the configured publication %s", f.Publication)
		}
	}
}

// TestLeastPrivilegePrecreatedPublication: the grants a DBA gives (SELECT,
// REPLICATION) and a publication "pgtwin" the superuser created FOR ALL
// TABLES: with sync.publication = "pgtwin" both modes work, and pgtwin
// leaves the publication as it was.
func TestLeastPrivilegePrecreatedPublication(t *testing.T) {
	e := newPrivEnv(t)
	e.src.Exec(t, "app", `GRANT CONNECT ON DATABASE app TO `+privRole+`;
		GRANT USAGE ON SCHEMA audit TO `+privRole+`;
		GRANT SELECT ON ALL TABLES IN SCHEMA public, audit TO `+privRole+`;
		GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, audit TO `+privRole+`;
		ALTER ROLE `+privRole+` REPLICATION;
		CREATE PUBLICATION pgtwin FOR ALL TABLES;`)
	f := e.bothModes(t, "pgtwin")
	e.dropSlot(t, f)
	if w := f.Status().Warnings; len(w) != 0 {
		t.Errorf("warnings with a FOR ALL TABLES publication: %q", w)
	}
	if all := query[bool](t, e.src, "SELECT puballtables FROM pg_publication WHERE pubname = 'pgtwin'"); !all {
		t.Errorf("the pre-created publication is no longer FOR ALL TABLES")
	}
}

// TestLeastPrivilegeSetupSQL: the superuser runs what SetupSQL prints for
// the config, nothing else; both modes work as pgtwin_ro. A table the
// owner creates afterwards is readable (default privileges) but not in
// the publication: dump mode copies it, logical mode warns (status and
// mask plan) and leaves it out.
func TestLeastPrivilegeSetupSQL(t *testing.T) {
	e := newPrivEnv(t)
	cfg := config.DefaultConfig()
	cfg.Source.URL = e.srcURL
	cfg.Sync.Mode = "logical"
	cfg.Sync.Publication = "pgtwin feed"
	cfg.Sync.ExcludeTables = e.sel.ExcludeTables
	sql, err := SetupSQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.src.Psql(t, "app", sql)
	e.src.Psql(t, "app", sql) // twice: it can be run again
	pubTables := query[int64](t, e.src, "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'pgtwin feed'")
	// customers, addresses, orders, payments, events_2024, events_2025; not audit.log.
	if pubTables != 6 {
		t.Errorf("the setup SQL's publication holds %d tables, want the 6 selected", pubTables)
	}
	e.src.Exec(t, "app", `SET ROLE app_owner;
		CREATE TABLE late (id int PRIMARY KEY, note text);
		INSERT INTO late SELECT i, 'n' || i FROM generate_series(1, 10) i;`)

	f := e.bothModes(t, "pgtwin feed")
	w := f.Status().Warnings
	if len(w) != 1 || !strings.Contains(w[0], `"public"."late"`) || !strings.Contains(w[0], "ALTER PUBLICATION") {
		t.Errorf("warnings = %q, want one naming public.late and how to add it", w)
	}
	if n := query[int64](t, e.tgt, "SELECT count(*) FROM late"); n != 0 {
		t.Errorf("late, outside the publication, has %d rows after the logical copy", n)
	}
	_, mw, err := f.maskSelection(context.Background(), maskBackoff)
	if err != nil || len(mw) != 1 || !strings.Contains(warningLines(mw), "warning: table \"public\".\"late\" is not in publication") {
		t.Errorf("mask plan warnings = %q, %v", mw, err)
	}

	// The DBA runs the setup SQL again, which adds late to the
	// publication; the daemon restarts and follows on: late, which the
	// copy left empty, stays out until a resync, and the warning says so.
	e.src.Psql(t, "app", sql)
	if n := query[int64](t, e.src, "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'pgtwin feed' AND tablename = 'late'"); n != 1 {
		t.Fatalf("running the setup SQL again did not add late to the publication")
	}
	e.src.Exec(t, "app", `UPDATE late SET note = 'changed'; INSERT INTO late VALUES (11, 'new')`)
	f = e.privFollower("pgtwin feed")
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	waitState(t, f, stateStreaming, time.Minute)
	e.src.Exec(t, "app", `SET ROLE app_owner; INSERT INTO late VALUES (12, 'newer'); INSERT INTO orders (customer_id, total, placed_at, status) VALUES (1, 1, now(), 'after restart')`)
	e.sync(time.Minute)
	if n := query[int64](t, e.tgt, "SELECT count(*) FROM late"); n != 0 {
		t.Errorf("late, added to the publication after the copy, has %d rows in the twin after a restart", n)
	}
	if n := query[int64](t, e.tgt, "SELECT count(*) FROM orders WHERE status = 'after restart'"); n != 1 {
		t.Errorf("the restarted follower did not apply a change to orders")
	}
	if st := f.Status(); st.State != stateStreaming || st.Missing != 0 || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "joined publication") {
		t.Errorf("after a restart with late in the publication: state %s, missing %d, warnings %q", st.State, st.Missing, st.Warnings)
	}
	// A table created while following, outside the publication, is a
	// warning as soon as the follower notices it.
	e.src.Exec(t, "app", `SET ROLE app_owner; CREATE TABLE later (id int PRIMARY KEY)`)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(strings.Join(f.Status().Warnings, "\n"), `table "public"."later" is not in publication`) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning for a new table outside the publication: %q", f.Status().Warnings)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if msel, mw, err := f.maskSelection(context.Background(), maskBackoff); err != nil || len(mw) != 2 || !strings.Contains(mw[1], "joined publication") || msel.Includes("public", "late") {
		t.Errorf("mask plan after late joined the publication: warnings %q, %v", mw, err)
	}
	f.Stop()
	e.dropSlot(t, f)
}

// TestLeastPrivilegeRefusals: each thing a least-privilege role lacks stops
// the sync before anything is copied, with one sentence that says what to
// do and points to `pgtwin sync setup-sql`; nothing on the source changes.
func TestLeastPrivilegeRefusals(t *testing.T) {
	ctx := context.Background()
	e := newPrivEnv(t)
	want := func(what string, err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%s: error %q lacks %q", what, err, p)
			}
		}
	}
	const hint = "`pgtwin sync setup-sql`"

	want("no CONNECT", e.privDump(ctx), `connect to source as pgtwin_ro: permission denied for database "app": `, hint)
	e.src.Exec(t, "app", "GRANT CONNECT ON DATABASE app TO "+privRole)
	want("no SELECT", e.privDump(ctx), "role pgtwin_ro may not read everything the sync copies",
		`no USAGE on schema "audit"`, `no SELECT on "audit"."log", "audit"."log_id_seq", "public"."addresses"`, hint)

	e.src.Exec(t, "app", `GRANT USAGE ON SCHEMA audit TO `+privRole+`;
		GRANT SELECT ON ALL TABLES IN SCHEMA public, audit TO `+privRole+`;
		GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, audit TO `+privRole+`;
		SET ROLE app_owner; ALTER TABLE customers ENABLE ROW LEVEL SECURITY;`)
	want("row-level security", e.privDump(ctx), `row-level security hides rows of "public"."customers"`, "BYPASSRLS", hint)
	e.src.Exec(t, "app", "SET ROLE app_owner; ALTER TABLE customers DISABLE ROW LEVEL SECURITY")

	want("no REPLICATION", e.privFill(ctx, ""), "role pgtwin_ro may not replicate: ALTER ROLE", hint)
	e.src.Exec(t, "app", "ALTER ROLE "+privRole+" REPLICATION")

	err := e.privFill(ctx, "")
	want("managed publication", err, "role pgtwin_ro may not create or alter publication pgtwin on the source (permission denied for database app)",
		hint, `set sync.publication = "pgtwin"`)
	if err != nil && strings.Contains(err.Error(), "SQLSTATE") {
		t.Errorf("the refusal quotes a SQLSTATE: %v", err)
	}

	e.src.Exec(t, "app", "CREATE PUBLICATION pgtwin FOR ALL TABLES")
	want("pre-created, managed", e.privFill(ctx, ""), "may not create or alter publication pgtwin on the source (must be owner of publication pgtwin)",
		`set sync.publication = "pgtwin"`)

	err = e.privFill(ctx, "absent")
	want("missing publication", err, `sync.publication names publication "absent", which the source database does not have`, hint)
	if !errors.Is(err, errPublicationMissing) {
		t.Errorf("missing publication: %v is not errPublicationMissing", err)
	}

	e.src.Exec(t, "app", "CREATE PUBLICATION via_root FOR ALL TABLES WITH (publish_via_partition_root = true)")
	want("via root", e.privFill(ctx, "via_root"), "publication \"via_root\" publishes partitions as their root", "publish_via_partition_root = false")

	if n := query[int64](t, e.src, "SELECT count(*) FROM pg_replication_slots"); n != 0 {
		t.Errorf("%d slots on the source after the refusals", n)
	}

	// What makes the twin see less than the selection is a warning.
	e.src.Exec(t, "app", `CREATE PUBLICATION partial FOR TABLE customers WHERE (id > 10), orders (id, status), events_2024
		WITH (publish = 'insert, update')`)
	sel, warnings, err := publishedSelection(ctx, e.src.Connect(t, "app"), "partial", e.sel)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(warnings, "\n")
	for _, w := range []string{`publication "partial" does not publish delete, truncate`,
		`table "public"."customers" is published with a row filter`, `table "public"."orders" is published with a column list`,
		`table "public"."addresses" is not in publication "partial"`, `table "public"."events_2025" is not in publication "partial"`} {
		if !strings.Contains(text, w) {
			t.Errorf("warnings lack %q:\n%s", w, text)
		}
	}
	if len(warnings) != 6 || sel.Includes("public", "payments") || !sel.Includes("public", "orders") || sel.Includes("audit", "log") {
		t.Errorf("partial publication: %d warnings, selection %+v", len(warnings), sel)
	}
	if all := query[bool](t, e.src, "SELECT puballtables FROM pg_publication WHERE pubname = 'pgtwin'"); !all {
		t.Errorf("a refused sync changed the pre-created publication")
	}
	var n int64
	conn := e.tgt.Connect(t, "app")
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'customers'").Scan(&n); err != nil || n != 0 {
		t.Errorf("a refused sync left %d customers tables in the twin (%v)", n, err)
	}
}
