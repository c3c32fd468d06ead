package anonymize

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func col(name, base string, samples ...string) Column {
	c := Column{Name: name, Type: base, Base: base}
	for _, s := range samples {
		c.Samples = append(c.Samples, []byte(s))
	}
	return c
}

func shopCatalog() *Catalog {
	return &Catalog{Tables: []Table{
		{Schema: "public", Name: "users",
			Columns:     []Column{col("id", "int4"), col("email", "text", "a@b.com", "c@d.org"), col("nick", "text", "zed", "amy")},
			Constraints: []Constraint{{Name: "users_pkey", Kind: "primary key", Columns: []string{"id"}}, {Name: "users_email_key", Kind: "unique", Columns: []string{"email"}}}},
		{Schema: "public", Name: "invites",
			Columns:     []Column{col("inviter", "text"), col("code", "text")},
			ForeignKeys: []ForeignKey{{Name: "invites_inviter_fkey", Columns: []string{"inviter"}, RefSchema: "public", RefTable: "users", RefColumns: []string{"email"}}}},
		{Schema: "public", Name: "reminders",
			Columns:     []Column{col("invite_inviter", "text"), col("at", "timestamptz")},
			ForeignKeys: []ForeignKey{{Name: "reminders_fkey", Columns: []string{"invite_inviter"}, RefSchema: "public", RefTable: "invites", RefColumns: []string{"inviter"}}}},
	}}
}

func colPlan(t *testing.T, p *Plan, table, column string) ColumnPlan {
	t.Helper()
	tp := p.table("public", table)
	for _, c := range tp.Columns {
		if c.Column == column {
			return c
		}
	}
	t.Fatalf("no column %s.%s", table, column)
	return ColumnPlan{}
}

func TestPlanFKChainsInheritTheRule(t *testing.T) {
	p, err := BuildPlan(shopCatalog(), Rules{"public.users.email": rule("email")}, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ table, col, origin string }{{"invites", "inviter", "public.users.email"}, {"reminders", "invite_inviter", "public.invites.inviter"}} {
		cp := colPlan(t, p, c.table, c.col)
		if cp.Action != ActionMask || cp.Rule.Identity() != rule("email").Identity() || cp.Source != SourceFK || cp.Origin != c.origin {
			t.Errorf("%s.%s: %+v", c.table, c.col, cp)
		}
	}
	if cp := colPlan(t, p, "users", "id"); cp.Summary() != "keep (not PII: type int4)" {
		t.Errorf("users.id: %s", cp.Summary())
	}
}

func TestPlanRefusals(t *testing.T) {
	cases := []struct {
		name  string
		rules Rules
		want  string
	}{
		{"non-unique on UNIQUE", Rules{"public.users.email": rule("partial")}, "public.users.email: partial does not keep distinct values distinct, but the column is in UNIQUE users_email_key"},
		{"FK child masked differently", Rules{"public.users.email": rule("email"), "public.invites.inviter": rule("hash")}, "public.invites.inviter: is masked with hash but references public.users.email, masked with email (FK invites_inviter_fkey)"},
		{"FK child kept", Rules{"public.users.email": rule("email"), "public.invites.inviter": rule("keep")}, "keeps values but references public.users.email"},
		{"unknown column", Rules{"public.users.emial": rule("email")}, `anonymize.columns."public.users.emial": table public.users has no column "emial"`},
		{"null on PK", Rules{"public.users.email": rule("email"), "public.users.id": rule("null")}, "public.users.id: null does not keep distinct values distinct, but the column is in PRIMARY KEY users_pkey"},
		{"rule fails on samples", Rules{"public.users.email": rule("email"), "public.users.nick": rule("date")}, "public.users.nick: date fails on 2 of 2 sampled values"},
	}
	for _, c := range cases {
		_, err := BuildPlan(shopCatalog(), c.rules, PolicyFail)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant %q", c.name, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "a@b.com") || strings.Contains(err.Error(), "amy")) {
			t.Errorf("%s: error shows a sampled value: %v", c.name, err)
		}
	}
	cat := shopCatalog()
	cat.Tables[0].Constraints = append(cat.Tables[0].Constraints, Constraint{Name: "users_nick_email_key", Kind: "unique", Columns: []string{"nick", "email"}})
	if _, err := BuildPlan(cat, Rules{"public.users.email": rule("email"), "public.users.nick": rule("name")}, PolicyFail); err == nil || !strings.Contains(err.Error(), "UNIQUE users_nick_email_key") {
		t.Errorf("multi-column unique: %v", err)
	}
	p, err := BuildPlan(shopCatalog(), Rules{"public.users.email": rule("email"), "public.gone.x": rule("null")}, PolicyFail)
	if err != nil || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "public.gone.x") {
		t.Errorf("rule for an unsynced table: %v %v", p, err)
	}
}

func TestPlanPolicies(t *testing.T) {
	// No rules: users.email is PII (name and values) and so are its FK children.
	p, err := BuildPlan(shopCatalog(), nil, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	un := p.Unclassified()
	if len(un) != 3 || un[0].Column != "public.users.email" || !strings.Contains(un[0].Reason, "name looks like an email; 2/2 sampled values are emails") {
		t.Fatalf("unclassified: %+v", un)
	}
	if !strings.Contains(un[1].Reason, "references unclassified public.users.email") {
		t.Fatalf("FK child of unclassified: %+v", un[1])
	}
	if !strings.Contains(p.String(), `"public.users.email" = { transform = "email" }`) {
		t.Fatalf("plan text lacks the suggested rule:\n%s", p)
	}

	p, err = BuildPlan(shopCatalog(), nil, PolicyMask)
	if err != nil {
		t.Fatal(err)
	}
	if cp := colPlan(t, p, "users", "email"); cp.Action != ActionMask || cp.Rule.Transform != "email" || !cp.Unique || cp.Source != SourcePolicy {
		t.Fatalf("mask policy: %+v", cp)
	}
	if cp := colPlan(t, p, "reminders", "invite_inviter"); cp.Rule == nil || cp.Rule.Transform != "email" || cp.Source != SourceFK {
		t.Fatalf("mask policy, FK grandchild: %+v", cp)
	}

	// null on a UNIQUE (nullable) column is fine: NULLs never collide.
	p, err = BuildPlan(shopCatalog(), nil, PolicyNull)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Table("public", "users", testKey)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.MaskCopyLine(nil, []byte("1\ta@b.com\tzed\n"))
	if err != nil || string(out) != "1\t\\N\tzed\n" {
		t.Fatalf("null policy: %q %v", out, err)
	}
}

// MaskCopyLine (dump sync) and MaskValues (logical sync, pgoutput text)
// give the same output for the same values, escapes and NULLs included.
func TestCopyAndTupleMaskingAgree(t *testing.T) {
	cat := &Catalog{Tables: []Table{{Schema: "s", Name: "t", Columns: []Column{
		col("a", "text"), col("email", "text"), col("b", "text"), col("phone", "text"), col("doc", "jsonb"), col("name", "text"),
	}}}}
	rules := Rules{
		"s.t.email": rule("email"), "s.t.phone": rule("phone"), "s.t.name": rule("name"),
		"s.t.doc": rule("json", "paths", map[string]any{"who": map[string]any{"transform": "name"}}),
	}
	p, err := BuildPlan(cat, rules, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Table("s", "t", testKey)
	if err != nil {
		t.Fatal(err)
	}
	rows := [][][]byte{
		{[]byte("x\ty"), []byte("tab\t@x.com"), nil, []byte("+1 555\n0100"), []byte(`{"who": "Ann\\Lee", "n": 1}`), []byte("O'Brien")},
		{[]byte(""), nil, []byte(`back\slash`), []byte(""), nil, []byte("ünï")},
	}
	for _, vals := range rows {
		line := AppendCopyLine(nil, vals)
		out, err := m.MaskCopyLine(nil, line)
		if err != nil {
			t.Fatal(err)
		}
		tuple, err := m.MaskValues(vals)
		if err != nil {
			t.Fatal(err)
		}
		if want := AppendCopyLine(nil, tuple); !bytes.Equal(out, want) {
			t.Fatalf("COPY path %q, tuple path %q", out, want)
		}
		got := SplitCopyLine(out)
		if !bytes.Equal(got[0], vals[0]) || !bytes.Equal(got[2], vals[2]) || (got[2] == nil) != (vals[2] == nil) {
			t.Fatalf("unmasked columns changed: %q", out)
		}
	}
	for _, bad := range []string{"1\t2\n", "1\t2\t3\t4\t5\t6\t7\n"} {
		if _, err := m.MaskCopyLine(nil, []byte(bad)); !errors.Is(err, ErrColumnCount) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestDetectors(t *testing.T) {
	for v, want := range map[string]string{
		"jane@corp.io": KindEmail, "4111 1111 1111 1111": KindCard, "4111111111111112": "",
		"GB82 WEST 1234 5698 7654 32": KindIBAN, "GB82 WEST 1234 5698 7654 33": "",
		"123-45-6789": KindNationalID, "666-45-6789": KindPhone, // never-issued SSN area: not an SSN "10.0.0.1": KindIP, "+1 (555) 010-4477": KindPhone,
		"20240101": "", "hello world": "",
	} {
		if got := valueKind([]byte(v)); got != want {
			t.Errorf("valueKind(%q) = %q, want %q", v, got, want)
		}
	}
	c := NewChecker(LeakDetectors(), [][]byte{[]byte("Ada Lovelace")})
	for v, want := range map[string]string{
		"reach me at ada@analytical.co.uk": "email", "gabrielle.li.kjm6heseye@example.com": "",
		"paid with 4111-1111-1111-1111 ok": "card number (Luhn)", `{"name": "Ada Lovelace"}`: "exact source value",
		"Ada Lovelace": "exact source value", "Ada": "", "ssn 123-45-6789": "national id (US SSN)",
	} {
		f := c.Check("s", "t", "c", []byte(v))
		got := ""
		if f != nil {
			got = f.Detector
			if strings.Contains(f.String(), v) || strings.Contains(f.Redacted, "analytical") || strings.Contains(f.Redacted, "1111-1111") {
				t.Errorf("finding shows the value: %s", f)
			}
		}
		if got != want {
			t.Errorf("Check(%q) = %q, want %q", v, got, want)
		}
	}
}

// The plan travels over the socket as JSON; the CLI prints it from there.
func TestPlanJSONRoundTrip(t *testing.T) {
	cat := shopCatalog()
	cat.Tables[1].Columns = append(cat.Tables[1].Columns, col("meta", "jsonb", `{"jane@x.com": {"phone": "+1 555 010 4477"}, "tier": "pro"}`))
	p, err := BuildPlan(cat, Rules{"public.users.email": rule("email", "unique", true)}, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	if s := p.String(); strings.Contains(s, "jane@x.com") || !strings.Contains(s, "*.phone (phone)") {
		t.Fatalf("json key handling in plan:\n%s", s)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.String() != p.String() || len(back.Unclassified()) != len(p.Unclassified()) {
		t.Fatalf("plan changed through JSON:\n%s\nvs\n%s", back.String(), p.String())
	}
	if _, err := back.Table("public", "users", testKey); err == nil {
		t.Fatal("a decoded plan handed out a masker")
	}
}

// Rules name the partitioned table; the catalog lists its leaf partitions.
func TestPlanPartitions(t *testing.T) {
	part := func(name string) Table {
		return Table{Schema: "public", Name: name, Parent: "public.events",
			Columns: []Column{col("id", "int4"), col("email", "text")}}
	}
	cat := &Catalog{Tables: []Table{part("events_2025"), part("events_2026"),
		{Schema: "public", Name: "notes", Columns: []Column{col("event_email", "text")},
			ForeignKeys: []ForeignKey{{Name: "notes_fk", Columns: []string{"event_email"}, RefSchema: "public", RefTable: "events", RefColumns: []string{"email"}}}}}}
	p, err := BuildPlan(cat, Rules{"public.events.email": rule("email")}, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"events_2025", "events_2026"} {
		if cp := colPlan(t, p, tb, "email"); cp.Action != ActionMask || cp.Source != SourceConfig {
			t.Errorf("%s.email: %s", tb, cp.Summary())
		}
	}
	if cp := colPlan(t, p, "notes", "event_email"); cp.Source != SourceFK || cp.Rule.Transform != "email" {
		t.Errorf("FK to the partitioned parent: %s", cp.Summary())
	}
	if len(p.Warnings) != 0 {
		t.Errorf("warnings: %v", p.Warnings)
	}
}

func TestPlanCheckerIgnoresKeptColumns(t *testing.T) {
	p, err := BuildPlan(shopCatalog(), Rules{"public.users.email": rule("email"), "public.users.nick": rule("keep")}, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Checker(testKey)
	if f := c.Check("public", "users", "nick", []byte("help@shop.com")); f != nil {
		t.Fatalf("kept column reported: %s", f)
	}
	if f := c.Check("public", "users", "email", []byte("a@b.com")); f == nil || f.Detector != "exact source value" {
		t.Fatalf("masked column not checked: %v", f)
	}
}

func TestDetectByNameAndType(t *testing.T) {
	tab := &Table{Schema: "public", Name: "customers"}
	for _, c := range []struct {
		col, base string
		pii       bool
	}{
		{"phone_id", "int8", false}, {"location_id", "int4", false}, {"latitude", "float8", true},
		{"email_verified", "bool", false}, {"license_key", "text", false}, {"drivers_license", "text", true},
		{"birth_date", "date", true}, {"created_at", "timestamptz", false}, {"name", "text", true},
		{"ssn", "int8", true}, {"client_ip", "inet", true}, {"status", "text", false},
	} {
		col := Column{Name: c.col, Base: c.base, Type: c.base}
		if got := detect(tab, &col) != nil; got != c.pii {
			t.Errorf("%s %s: detected %v, want %v", c.col, c.base, got, c.pii)
		}
	}
	if detect(&Table{Schema: "public", Name: "products"}, &Column{Name: "name", Base: "text"}) != nil {
		t.Error("products.name detected as a person's name")
	}
}
