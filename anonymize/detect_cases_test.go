package anonymize

import (
	"strings"
	"testing"
)

// The columns the issue found kept as "no PII" on public sample databases,
// each with the rule the plan must now suggest.
func TestDetectsTheIssuesMisses(t *testing.T) {
	png := `\x89504e470d0a1a0a0000000d49484452000001f4`
	col := func(name, typ, base string, samples ...string) Column {
		c := Column{Name: name, Type: typ, Base: base}
		for _, s := range samples {
			c.Samples = append(c.Samples, []byte(s))
		}
		return c
	}
	cat := &Catalog{Tables: []Table{
		{Schema: "public", Name: "passenger", Columns: []Column{col("passengerid", "integer", "int4"),
			col("name", "text", "text", "Braund, Mr. Owen Harris", "Cumings, Mrs. John Bradley (Florence Briggs Thayer)", "Heikkinen, Miss. Laina", "Allen, Mr. William Henry")}},
		{Schema: "public", Name: "customer", Columns: []Column{col("customer_id", "integer", "int4"), col("first_name", "text", "text", "Mary")},
			Constraints: []Constraint{{Name: "customer_pkey", Kind: "primary key", Columns: []string{"customer_id"}}}},
		{Schema: "public", Name: "invoice", Columns: []Column{col("invoice_id", "integer", "int4"), col("customer_id", "integer", "int4"),
			col("billing_address", "character varying(70)", "varchar", "Theodor-Heuss-Straße 34", "Rua Dr. Falcão Filho, 155"),
			col("billing_city", "character varying(40)", "varchar", "Stuttgart", "São Paulo"), col("billing_postal_code", "character varying(10)", "varchar", "70174", "01007-010")},
			ForeignKeys: []ForeignKey{{Name: "invoice_customer_id_fkey", Columns: []string{"customer_id"}, RefSchema: "public", RefTable: "customer", RefColumns: []string{"customer_id"}}}},
		{Schema: "public", Name: "address", Columns: []Column{col("address_id", "integer", "int4"), col("address2", "character varying(50)", "varchar", "Apt 4", ""),
			col("district", "character varying(20)", "varchar", "Alberta", "QLD", "Nagasaki")}},
		{Schema: "public", Name: "staff", Columns: []Column{col("staff_id", "integer", "int4"), col("picture", "bytea", "bytea", png, png)}},
		{Schema: "public", Name: "users", Columns: []Column{col("id", "integer", "int4"), col("api_key", "uuid", "uuid", "6ba7b810-9dad-11d1-80b4-00c04fd430c8")}},
		{Schema: "public", Name: "vehicles", Columns: []Column{col("id", "integer", "int4"), col("owner_name", "text", "text", "Owen Harris", "Mary Smith")}},
	}}
	p, err := BuildPlan(cat, nil, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"public.passenger.name":              `{ transform = "name" }`,
		"public.invoice.billing_address":     `{ transform = "address" }`,
		"public.invoice.billing_city":        `{ transform = "address", part = "city" }`,
		"public.invoice.billing_postal_code": `{ transform = "address", part = "postcode" }`,
		"public.address.address2":            `{ transform = "address" }`,
		"public.address.district":            `{ transform = "address", part = "city" }`,
		"public.staff.picture":               `{ transform = "null" }`,
		"public.users.api_key":               `{ transform = "uuid" }`,
		"public.vehicles.owner_name":         `{ transform = "name" }`,
		"public.customer.first_name":         `{ transform = "name", part = "first" }`,
	}
	got := map[string]ColumnPlan{}
	for _, c := range p.Unclassified() {
		got[c.Column] = c
	}
	for key, rule := range want {
		c, ok := got[key]
		if !ok {
			t.Errorf("%s: not reported as PII", key)
			continue
		}
		if !strings.HasSuffix(c.Suggest, rule) {
			t.Errorf("%s: suggests %s, want %s", key, c.Suggest, rule)
		}
		t.Logf("%s: %s", key, c.Reason)
	}
	if len(got) != len(want) {
		t.Errorf("%d columns reported, want %d:\n%s", len(got), len(want), p)
	}
	if s := p.String(); strings.Contains(s, "Braund") || strings.Contains(s, "Stuttgart") {
		t.Errorf("the plan shows a sampled value:\n%s", s)
	}
}
