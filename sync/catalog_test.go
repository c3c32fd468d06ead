package twinsync

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// maskSchema is the test schema: users with a UNIQUE email, a jsonb
// profile with PII inside and a free-text notes column; addresses and orders
// referencing users (orders by id and by email).
const maskSchema = `
CREATE TABLE users (
    id         serial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    full_name  text NOT NULL,
    phone      text,
    birth_date date,
    profile    jsonb NOT NULL DEFAULT '{}',
    notes      text,
    alt_emails text[],
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE addresses (
    id       serial PRIMARY KEY,
    user_id  int NOT NULL REFERENCES users (id),
    street   text NOT NULL,
    city     text NOT NULL,
    postcode varchar(10) NOT NULL,
    UNIQUE (user_id, street)
);
CREATE TABLE orders (
    id            serial PRIMARY KEY,
    user_id       int NOT NULL REFERENCES users (id),
    contact_email text NOT NULL REFERENCES users (email),
    total         numeric(10,2) NOT NULL,
    status        text NOT NULL,
    client_ip     inet,
    created_at    timestamptz NOT NULL DEFAULT now()
);
`

const maskData = `
INSERT INTO users (email, full_name, phone, birth_date, profile, notes, alt_emails)
SELECT 'person' || i || '.' || (ARRAY['smith','jones','garcia','lee'])[1 + i % 4] || '@' || (ARRAY['gmail.com','yahoo.com','corp.io'])[1 + i % 3],
       (ARRAY['James','Mary','Ana','Wei','Olga'])[1 + i % 5] || ' ' || (ARRAY['Smith','Jones','Garcia','Lee'])[1 + i % 4] || i,
       '+1 (' || (200 + i % 700) || ') 555-' || lpad(i::text, 4, '0'),
       date '1960-01-01' + i * 41,
       jsonb_build_object('contact', jsonb_build_object('email', 'alt' || i || '@mail.example.net.com', 'phone', '+44 20 7946 ' || lpad(i::text, 4, '0')),
                          'prefs', jsonb_build_object('theme', 'dark', 'lang', 'en')),
       CASE WHEN i % 3 = 0 THEN 'called back, reach at person' || i || '@gmail.com' WHEN i % 3 = 1 THEN 'VIP	customer\ with "quotes"' END,
       CASE WHEN i % 2 = 0 THEN ARRAY['work' || i || '@corp.io', NULL, 'home ' || i || '@mail.com'] END
FROM generate_series(1, 300) i;
INSERT INTO addresses (user_id, street, city, postcode)
SELECT id, (id * 7 % 999) || ' Main St', (ARRAY['Springfield','Salem','Dover'])[1 + id % 3], lpad((id * 13 % 99999)::text, 5, '0') FROM users;
INSERT INTO addresses (user_id, street, city, postcode)
SELECT id, (id * 11 % 999) || ' Oak Ave', 'Salem', 'SW1A 1AA' FROM users WHERE id % 2 = 0;
INSERT INTO orders (user_id, contact_email, total, status, client_ip)
SELECT u.id, u.email, round((u.id * k * 3.7)::numeric % 9000, 2), (ARRAY['new','paid','shipped'])[1 + k % 3], ('10.0.' || (u.id % 250) || '.' || k)::inet
FROM users u, generate_series(1, 3) k;
`

// maskRules covers everything but users.birth_date, users.notes,
// orders.client_ip and the phone inside users.profile: those must come out
// as unclassified PII.
func maskRules(t *testing.T, complete bool) anonymize.Rules {
	cols := map[string]map[string]any{
		"public.users.email":        {"transform": "email"},
		"public.users.full_name":    {"transform": "name", "unique": true},
		"public.users.phone":        {"transform": "phone"},
		"public.users.alt_emails":   {"transform": "email"},
		"public.users.profile":      {"transform": "json", "paths": map[string]any{"contact.email": map[string]any{"transform": "email"}}},
		"public.addresses.street":   {"transform": "address", "unique": true},
		"public.addresses.city":     {"transform": "address", "part": "city"},
		"public.addresses.postcode": {"transform": "address", "part": "postcode"},
	}
	if complete {
		cols["public.users.birth_date"] = map[string]any{"transform": "date", "keep_year": true}
		cols["public.users.notes"] = map[string]any{"transform": "null"}
		cols["public.orders.client_ip"] = map[string]any{"transform": "ip"}
		cols["public.users.profile"]["paths"].(map[string]any)["contact.phone"] = map[string]any{"transform": "phone"}
	}
	rules, err := anonymize.ParseRules(cols)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func TestMaskPlanCopyAndCheck(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"src", "dst", "leaky"}})
	for _, db := range []string{"src", "dst", "leaky"} {
		pg.Exec(t, db, maskSchema)
	}
	pg.Exec(t, "src", maskData)
	pg.Exec(t, "src", "CREATE TABLE skipped (email text); INSERT INTO skipped VALUES ('x@y.com')")
	src := pg.Connect(t, "src")

	cat, err := ReadCatalog(ctx, src, Filter{ExcludeTables: []string{"skipped"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Tables) != 3 {
		t.Fatalf("catalog has %d tables, want addresses, orders, users", len(cat.Tables))
	}
	users := findTable(t, cat, "users")
	if c := findColumn(t, users, "email"); len(c.Samples) != CatalogSampleRows || c.Base != "text" || !c.NotNull {
		t.Fatalf("users.email: %d samples, base %q, not null %v", len(c.Samples), c.Base, c.NotNull)
	}
	if c := findColumn(t, findTable(t, cat, "addresses"), "postcode"); c.Type != "character varying(10)" || c.ColumnType().Length != 10 {
		t.Fatalf("addresses.postcode: %+v", c)
	}
	if c := findColumn(t, findTable(t, cat, "orders"), "total"); c.ColumnType().Precision != 10 || c.ColumnType().Scale != 2 {
		t.Fatalf("orders.total: %+v", c.ColumnType())
	}
	if len(findTable(t, cat, "orders").ForeignKeys) != 2 || len(findTable(t, cat, "addresses").Constraints) != 2 {
		t.Fatalf("constraints: orders %+v, addresses %+v", findTable(t, cat, "orders").ForeignKeys, findTable(t, cat, "addresses").Constraints)
	}

	// Incomplete rules: the plan reports the unclassified PII.
	plan, err := anonymize.BuildPlan(cat, maskRules(t, false), anonymize.PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan with incomplete rules:\n%s", plan)
	var un []string
	for _, c := range plan.Unclassified() {
		un = append(un, c.Column)
	}
	want := []string{"public.orders.client_ip", "public.users.birth_date", "public.users.profile", "public.users.notes"}
	if strings.Join(un, " ") != strings.Join(want, " ") {
		t.Fatalf("unclassified: %v, want %v", un, want)
	}
	if err := plan.UnclassifiedError(); !errors.Is(err, anonymize.ErrUnclassified) || !strings.Contains(err.Error(), `"public.users.notes" = {`) {
		t.Fatalf("UnclassifiedError: %v", err)
	}
	if _, err := plan.Table("public", "users", make([]byte, 32)); !errors.Is(err, anonymize.ErrUnclassified) {
		t.Fatalf("masker for a table with unclassified PII: %v", err)
	}
	text := plan.String()
	for _, s := range []string{"mask: email (unique) from FK public.users.email (orders_contact_email_fkey)",
		"keep (not PII: type integer)", "UNCLASSIFIED PII (reason: json rule leaves PII unmasked at contact.phone (phone))"} {
		if !strings.Contains(text, s) {
			t.Errorf("plan lacks %q", s)
		}
	}
	for _, c := range cat.Tables {
		for _, col := range c.Columns {
			for _, s := range col.Samples {
				if len(s) > 6 && strings.Contains(text, string(s)) {
					t.Fatalf("plan text shows a sampled value of %s.%s", c.Name, col.Name)
				}
			}
		}
	}

	// A rule that breaks uniqueness is refused, naming the constraint.
	bad := maskRules(t, true)
	bad["public.users.email"] = anonymize.Rule{Column: "public.users.email", Transform: "partial", Params: map[string]any{}}
	if _, err := anonymize.BuildPlan(cat, bad, anonymize.PolicyFail); err == nil || !strings.Contains(err.Error(), "UNIQUE users_email_key") {
		t.Fatalf("partial on a UNIQUE column: %v", err)
	}

	// Complete rules: copy every table through the masker into dst.
	plan, err = anonymize.BuildPlan(cat, maskRules(t, true), anonymize.PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan with complete rules:\n%s", plan)
	if len(plan.Unclassified()) != 0 {
		t.Fatalf("still unclassified: %v", plan.Unclassified())
	}
	key := bytes.Repeat([]byte{42}, 32)
	dst := pg.Connect(t, "dst")
	for _, table := range []string{"users", "addresses", "orders"} {
		copyMasked(t, src, dst, plan, key, table)
	}

	q := func(conn *pgx.Conn, sql string) int64 {
		var n int64
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	for _, sql := range []string{
		"SELECT count(*) FROM users",
		"SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id",
		"SELECT count(*) FROM orders o JOIN users u ON u.email = o.contact_email",
		"SELECT count(*) FROM addresses a JOIN users u ON u.id = a.user_id",
		"SELECT count(DISTINCT contact_email) FROM orders",
		"SELECT count(*) FROM users WHERE notes IS NULL",
		"SELECT count(*) FROM users u JOIN orders o ON o.user_id = u.id AND o.contact_email = u.email",
	} {
		s, d := q(src, sql), q(dst, sql)
		if sql == "SELECT count(*) FROM users WHERE notes IS NULL" {
			if d != s+q(src, "SELECT count(*) FROM users WHERE notes IS NOT NULL") {
				t.Errorf("notes not nulled: %d", d)
			}
			continue
		}
		if s != d || s == 0 {
			t.Errorf("%s: source %d, masked %d", sql, s, d)
		}
	}
	// No source email, name or phone survives, anywhere in users.
	srcVals := map[string]bool{}
	for _, row := range strings.Split(pg.Psql(t, "src", "SELECT email || E'\\n' || full_name || E'\\n' || phone FROM users"), "\n") {
		srcVals[row] = true
	}
	for _, row := range strings.Split(pg.Psql(t, "dst", "SELECT email || E'\\n' || full_name || E'\\n' || phone || E'\\n' || (profile->'contact'->>'email') || E'\\n' || (profile->'contact'->>'phone') FROM users"), "\n") {
		if srcVals[row] {
			t.Errorf("masked users hold a source value")
		}
	}
	if n := q(dst, "SELECT count(*) FROM users WHERE email NOT LIKE '%@example.___'"); n != 0 {
		t.Errorf("%d masked emails are not at a reserved domain", n)
	}
	if s, d := q(src, "SELECT count(e) FROM users, unnest(alt_emails) e"), q(dst, "SELECT count(e) FROM users, unnest(alt_emails) e WHERE e LIKE '%@example.___'"); s == 0 || s != d {
		t.Errorf("text[] of emails: %d source elements, %d masked ones", s, d)
	}
	if n := q(dst, "SELECT count(*) FROM users WHERE extract(year FROM birth_date) <> extract(year FROM date '1960-01-01' + id * 41)"); n != 0 {
		t.Errorf("keep_year: %d birth dates changed year", n)
	}

	// mask check: nothing in the masked copy...
	checker := plan.Checker(key)
	if checker.ExactCount() < CatalogSampleRows {
		t.Fatalf("checker holds %d exact values", checker.ExactCount())
	}
	findings, err := scanForLeaks(ctx, dst, checker, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 0 {
		t.Fatalf("masked database has findings: %v", findings)
	}
	// ...and the planted raw email, card number and sampled value in a leaky one.
	exact := string(findColumn(t, users, "full_name").Samples[3])
	leaky := pg.Connect(t, "leaky")
	if _, err := leaky.Exec(ctx, `INSERT INTO users (email, full_name, notes) VALUES
		('someone@example.com', 'Masked Name', 'write to jane.roe@realmail.org please'),
		('a@example.net', 'Other Name', 'card 4111 1111 1111 1111 exp 12/29'),
		('b@example.org', $1, NULL)`, exact); err != nil {
		t.Fatal(err)
	}
	findings, err = scanForLeaks(ctx, leaky, checker, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range findings {
		t.Logf("finding: %s", f)
		got[f.Column] = f.Detector
		if s := f.String(); strings.Contains(s, "jane.roe") || strings.Contains(s, "4111 1111") || strings.Contains(s, exact) {
			t.Fatalf("finding shows the raw value: %s", s)
		}
	}
	if len(findings) != 3 || got["notes"] == "" || got["full_name"] != "exact source value" {
		t.Fatalf("findings %v, want the email and card in notes and the exact value in full_name", findings)
	}
}

// copyMasked copies one table src → dst as the dump sync does: COPY out in
// the masker's column order, mask each line, COPY in.
func copyMasked(t *testing.T, src, dst *pgx.Conn, plan *anonymize.Plan, key []byte, table string) {
	ctx := context.Background()
	m, err := plan.Table("public", table, key)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range m.Columns() {
		cols = append(cols, pgx.Identifier{c}.Sanitize())
	}
	list := strings.Join(cols, ", ")
	var raw bytes.Buffer
	if _, err := src.PgConn().CopyTo(ctx, &raw, "COPY public."+table+" ("+list+") TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, line := range bytes.SplitAfter(raw.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if out, err = m.MaskCopyLine(out, line); err != nil {
			t.Fatalf("mask %s: %v", table, err)
		}
	}
	if _, err := dst.PgConn().CopyFrom(ctx, bytes.NewReader(out), "COPY public."+table+" ("+list+") FROM STDIN"); err != nil {
		t.Fatalf("copy masked %s into dst: %v", table, err)
	}
}

func findTable(t *testing.T, cat *anonymize.Catalog, name string) *anonymize.Table {
	for i := range cat.Tables {
		if cat.Tables[i].Name == name {
			return &cat.Tables[i]
		}
	}
	t.Fatalf("catalog has no table %s", name)
	return nil
}

func findColumn(t *testing.T, tab *anonymize.Table, name string) *anonymize.Column {
	for i := range tab.Columns {
		if tab.Columns[i].Name == name {
			return &tab.Columns[i]
		}
	}
	t.Fatalf("table %s has no column %s", tab.Name, name)
	return nil
}

// Leaf partitions carry their root, so rules on the partitioned table apply
// to them; domains are described by their base type.
func TestReadCatalogPartitionsAndDomains(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"src"}})
	pg.Exec(t, "src", `
CREATE DOMAIN email_address AS varchar(80) NOT NULL CHECK (VALUE LIKE '%@%');
CREATE TABLE events (id int, contact email_address, at date, n numeric(8,3), g text GENERATED ALWAYS AS (upper(contact)) STORED) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE UNIQUE INDEX events_2025_lower ON events_2025 (lower(contact::text), id);
INSERT INTO events (id, contact, at, n) SELECT i, 'p' || i || '@corp.io', date '2025-06-01' + i, i / 7.0 FROM generate_series(1, 400) i;
CREATE TABLE big AS SELECT i, 'u' || i || '@corp.io' AS email FROM generate_series(1, 120000) i;
ANALYZE big;
`)
	cat, err := ReadCatalog(ctx, pg.Connect(t, "src"), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Tables) != 3 {
		t.Fatalf("tables: %+v", cat.Tables)
	}
	// A big table is sampled with TABLESAMPLE, still CatalogSampleRows values.
	if c := findColumn(t, findTable(t, cat, "big"), "email"); len(c.Samples) != CatalogSampleRows {
		t.Fatalf("big.email: %d samples", len(c.Samples))
	}
	cat.Tables = cat.Tables[1:]
	for _, tb := range cat.Tables {
		if tb.Parent != "public.events" || len(tb.Columns) != 4 {
			t.Fatalf("%s: parent %q, %d columns (generated column must be left out)", tb.Name, tb.Parent, len(tb.Columns))
		}
		c := findColumn(t, &tb, "contact")
		if c.Base != "varchar" || c.ColumnType().Length != 80 || !c.NotNull || len(c.Samples) == 0 {
			t.Fatalf("domain column: %+v", c)
		}
	}
	if cons := findTable(t, cat, "events_2025").Constraints; len(cons) != 1 || cons[0].Kind != "unique index" || strings.Join(cons[0].Columns, ",") != "id" {
		t.Fatalf("expression unique index: %+v", cons)
	}
	rules, err := anonymize.ParseRules(map[string]map[string]any{"public.events.contact": {"transform": "email"}})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := anonymize.BuildPlan(cat, rules, anonymize.PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Unclassified()) != 0 || !strings.Contains(plan.String(), "contact  email_address") {
		t.Fatalf("plan:\n%s", plan)
	}
	t.Logf("plan:\n%s", plan)
}
