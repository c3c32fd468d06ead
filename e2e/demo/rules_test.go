package main

import (
	"context"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/internal/sample"
	twinsync "github.com/pgtwin/pgtwin/sync"
)

// The demo's rules must classify every column of the sample shop: the demo
// runs with on_unclassified_pii = "fail" and would stop before copying a row.
func TestDemoRulesCoverTheSampleShop(t *testing.T) {
	var cols map[string]map[string]any
	if _, err := toml.Decode(demoRules, &cols); err != nil {
		t.Fatalf("demo rules are not TOML: %v", err)
	}
	rules, err := anonymize.ParseRules(cols)
	if err != nil {
		t.Fatalf("demo rules: %v", err)
	}
	c := pgtest.Start(t, pgtest.Options{Databases: []string{"shop"}})
	c.Exec(t, "shop", sample.Luhn+sample.Schema)
	c.Exec(t, "shop", sample.Data(500))
	conn := c.Connect(t, "shop")
	cat, err := twinsync.ReadCatalog(context.Background(), conn, twinsync.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := anonymize.BuildPlan(cat, rules, config.DefaultConfig().Anonymize.OnUnclassifiedPII)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	text := plan.String()
	if u := plan.Unclassified(); len(u) > 0 {
		t.Fatalf("demo rules leave %d columns unclassified:\n%s", len(u), text)
	}
	for _, want := range []string{"customers", "email", "card_number", "mask: email (unique)"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
	t.Logf("plan:\n%s", text)
}
