package anonymize

import "testing"

// A parameter spelled out at its default must mask exactly like the same
// rule without it: users write one form on one column and the other on
// another, and expect the masked values to join.
func TestIdentityCoversDefaults(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	pairs := []struct {
		a, b  map[string]any
		value string
	}{
		{map[string]any{"transform": "email"}, map[string]any{"transform": "email", "unique": true}, "mary.smith1@yahoo.com"},
		{map[string]any{"transform": "partial"}, map[string]any{"transform": "partial", "keep_last": int64(4)}, "4000000000158388"},
		{map[string]any{"transform": "name"}, map[string]any{"transform": "name", "part": "full"}, "Mary Smith"},
		{map[string]any{"transform": "hash"}, map[string]any{"transform": "hash", "length": 32.0}, "anything"},
	}
	for _, p := range pairs {
		rules, err := ParseRules(map[string]map[string]any{"s.t.a": p.a, "s.t.b": p.b})
		if err != nil {
			t.Fatal(err)
		}
		ra, rb := rules["s.t.a"], rules["s.t.b"]
		if ra.Identity() != rb.Identity() {
			t.Errorf("%v and %v: identities differ: %q vs %q", p.a, p.b, ra.Identity(), rb.Identity())
		}
		ta, err := NewTransformer(ra, key, ColumnType{Base: "text"})
		if err != nil {
			t.Fatal(err)
		}
		tb, err := NewTransformer(rb, key, ColumnType{Base: "text"})
		if err != nil {
			t.Fatal(err)
		}
		oa, _, _ := ta.Append(nil, []byte(p.value))
		ob, _, _ := tb.Append(nil, []byte(p.value))
		if string(oa) != string(ob) {
			t.Errorf("%v and %v mask %q differently: %q vs %q", p.a, p.b, p.value, oa, ob)
		}
	}
	// A parameter that is not the default still makes a different rule.
	rules, err := ParseRules(map[string]map[string]any{
		"s.t.a": {"transform": "email"},
		"s.t.b": {"transform": "email", "unique": false},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rules["s.t.a"].Identity() == rules["s.t.b"].Identity() {
		t.Error("unique = false has the same identity as the default (unique = true)")
	}
	// The plan shows only what the config said.
	if s := rules["s.t.a"].String(); s != "email" {
		t.Errorf("String() = %q, want the rule as written", s)
	}
}
