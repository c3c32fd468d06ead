package anonymize

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// dottedCatalog has the identifiers that broke keys: a dotted column in a
// reserved-word table, a mixed-case one, and an FK to the dotted column.
func dottedCatalog() *Catalog {
	return &Catalog{Tables: []Table{
		{Schema: "app", Name: "order",
			Columns: []Column{col("id", "int4"),
				col("user.name", "text", "Alice Johnson", "Bob Smith", "Carol White", "Dan Brown"),
				col("Contact Email", "text", "alice@example.com", "bob@example.org")},
			Constraints: []Constraint{{Name: "order_pkey", Kind: "primary key", Columns: []string{"id"}}, {Name: "order_user_name_key", Kind: "unique", Columns: []string{"user.name"}}}},
		{Schema: "app", Name: `say "hi"`,
			Columns:     []Column{col("who", "text")},
			ForeignKeys: []ForeignKey{{Name: "hi_who_fkey", Columns: []string{"who"}, RefSchema: "app", RefTable: "order", RefColumns: []string{"user.name"}}}},
	}}
}

// What mask plan suggests for a dotted column, pasted under
// [anonymize.columns], is a key the parser takes and that covers the column.
func TestPlanSuggestedDottedKeyParsesBack(t *testing.T) {
	p, err := BuildPlan(dottedCatalog(), Rules{}, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	u := p.Unclassified()
	var names []string
	for _, c := range u {
		names = append(names, c.Column)
	}
	if strings.Join(names, " | ") != `app.order."user.name" | app.order.Contact Email | app."say ""hi""".who` {
		t.Fatalf("unclassified: %q\n%s", names, p)
	}
	if !strings.HasPrefix(u[0].Suggest, `'app.order."user.name"' = { transform = "hash" }`) {
		t.Errorf("suggestion: %s", u[0].Suggest)
	}
	if err := p.UnclassifiedError(); err == nil || !strings.Contains(err.Error(), `app.order."user.name" (`) {
		t.Errorf("unclassified error: %v", err)
	}
	hi := p.table("app", `say "hi"`).Columns[0]
	if hi.Reason != `references unclassified app.order."user.name"` {
		t.Errorf("FK child: %+v", hi)
	}

	var doc strings.Builder
	doc.WriteString("[anonymize.columns]\n")
	text := p.String()
	for _, c := range u {
		if !strings.Contains(text, "\n  "+c.Suggest+"\n") {
			t.Errorf("mask plan does not print %s:\n%s", c.Suggest, text)
		}
		if !strings.HasPrefix(c.Suggest, "(") { // "(rule ...; inherits it via FK)"
			doc.WriteString(c.Suggest + "\n")
		}
	}
	var cfg struct {
		Anonymize struct{ Columns map[string]map[string]any }
	}
	if _, err := toml.Decode(doc.String(), &cfg); err != nil {
		t.Fatalf("suggestions are not TOML: %v\n%s", err, doc.String())
	}
	rules, err := ParseRules(cfg.Anonymize.Columns)
	if err != nil {
		t.Fatalf("suggested keys do not parse: %v\n%s", err, doc.String())
	}
	p2, err := BuildPlan(dottedCatalog(), rules, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	if u := p2.Unclassified(); len(u) != 0 {
		t.Fatalf("still unclassified with the suggested rules: %+v", u)
	}
	for _, c := range []ColumnPlan{p2.table("app", "order").Columns[1], p2.table("app", "order").Columns[2]} {
		if c.Action != ActionMask || c.Source != SourceConfig {
			t.Errorf("%s: %s", c.Column, c.Summary())
		}
	}
	if hi := p2.table("app", `say "hi"`).Columns[0]; hi.Action != ActionMask || hi.Origin != `app.order."user.name"` {
		t.Errorf("FK child after the rule: %s", hi.Summary())
	}
}

// Any SQL-style spelling of a key names the same column; two spellings of one
// column are refused, as are keys that are not three parts.
func TestParseRulesQuotedKeys(t *testing.T) {
	email := map[string]any{"transform": "email"}
	rules, err := ParseRules(map[string]map[string]any{
		`"app"."order"."user.name"`: {"transform": "name"},
		"public.users.email":        email,
		`public."Users"."E""mail"`:  email,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`app.order."user.name"`, "public.users.email", `public.Users."E""mail"`} {
		if r, ok := rules[k]; !ok || r.Column != k {
			t.Errorf("no rule under canonical key %s: %v", k, rules)
		}
	}
	for cols, want := range map[string]map[string]map[string]any{
		`names the same column as "app.\"order\".\"user.name\""`: {`app."order"."user.name"`: email, `app.order."user.name"`: email},
		`"app.order.user.name": key must be schema.table.column`: {"app.order.user.name": email},
		`never closes`: {`app.order."user.name`: email},
	} {
		if _, err := ParseRules(want); err == nil || !strings.Contains(err.Error(), cols) {
			t.Errorf("ParseRules(%v) = %v, want %q", want, err, cols)
		}
	}
}

// A rule on a partitioned parent whose name holds a dot covers its leaves.
func TestPlanDottedPartitionParent(t *testing.T) {
	cat := &Catalog{Tables: []Table{{Schema: "app", Name: "ev_2024", Parent: "app.ev.log",
		Columns: []Column{col("id", "int4"), col("user.email", "text", "a@example.com", "b@example.org")}}}}
	rules, err := ParseRules(map[string]map[string]any{`app."ev.log"."user.email"`: {"transform": "email"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := BuildPlan(cat, rules, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	if c := p.table("app", "ev_2024").Columns[1]; c.Action != ActionMask || c.Source != SourceConfig || len(p.Warnings) != 0 {
		t.Errorf("leaf column: %s; warnings %q", c.Summary(), p.Warnings)
	}
}
