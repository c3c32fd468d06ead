package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSubsetKeysParse(t *testing.T) {
	cfg, err := ParseConfig(strings.NewReader(`[sync]
subset_skip_referencing = ["public.orders.orders_customer_id_fkey", "public.events(order_id) -> public.orders(id)"]
subset_foreign_keys = ['app."line.items"(order_id, "Shop ID") -> app.orders(id, shop_id)', "public.events(order_id) -> public.orders(id)"]
[sync.subset]
"public.orders" = "created_at > now() - interval '30 days'"
'app."order.archive"' = "true"
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := cfg.Sync.Subset["public.orders"]; got != "created_at > now() - interval '30 days'" {
		t.Fatalf("subset filter = %q", got)
	}
	s, tb, err := ParseTableKey(`app."order.archive"`)
	if err != nil || s != "app" || tb != "order.archive" {
		t.Fatalf("ParseTableKey = %q %q %v", s, tb, err)
	}
	f, err := ParseForeignKey(cfg.Sync.SubsetForeignKeys[0])
	if err != nil {
		t.Fatal(err)
	}
	want := ForeignKey{ChildSchema: "app", ChildTable: "line.items", ChildColumns: []string{"order_id", "Shop ID"},
		ParentSchema: "app", ParentTable: "orders", ParentColumns: []string{"id", "shop_id"}}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("ParseForeignKey = %+v, want %+v", f, want)
	}
	back, err := ParseForeignKey(f.String())
	if err != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("String %q parses back to %+v, %v", f.String(), back, err)
	}
}

func TestSubsetValidateNamesKeyAndValue(t *testing.T) {
	cases := []struct {
		mut  func(*Config)
		key  string
		want string
	}{
		{func(c *Config) {
			c.Sync.Mode = "logical"
			c.Sync.Subset = map[string]string{"public.orders": "true"}
		}, "sync.subset", "sync.subset works in dump mode only: "},
		{func(c *Config) { c.Sync.Subset = map[string]string{"orders": "true"} }, "sync.subset", "schema.table"},
		{func(c *Config) { c.Sync.Subset = map[string]string{"public.orders": " "} }, `sync.subset."public.orders"`, "SQL condition"},
		{func(c *Config) { c.Sync.SubsetSkipReferencing = []string{"public.orders"} }, "sync.subset_skip_referencing", "schema.table.constraint"},
		{func(c *Config) { c.Sync.SubsetForeignKeys = []string{"public.events(order_id) public.orders(id)"} }, "sync.subset_foreign_keys", "->"},
		{func(c *Config) { c.Sync.SubsetForeignKeys = []string{"public.events(a, b) -> public.orders(id)"} }, "sync.subset_foreign_keys", "2 referencing columns but 1"},
		{func(c *Config) { c.Sync.SubsetForeignKeys = []string{"events(a) -> public.orders(id)"} }, "sync.subset_foreign_keys", "schema.table"},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.mut(&cfg)
		err := cfg.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Key != c.key || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want FieldError for %s mentioning %q", err, c.key, c.want)
		}
	}
}
