package anonymize

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/pgtwin/pgtwin/internal/colkey"
)

// Rule says how one column (or one JSON path inside a column) is masked.
type Rule struct {
	// Column is the config key in canonical form (colkey.Format), e.g.
	// "public.users.email"; empty for a rule nested in a json rule.
	Column string `json:"column,omitempty"`
	// Transform names the transformer: email, name, phone, address, ip, date,
	// number, partial, hash, uuid, null, constant, regex, json, keep.
	Transform string `json:"transform"`
	// Params are the transformer's parameters, as the config spelled them.
	Params map[string]any `json:"params,omitempty"`
}

// Rules maps a column's key, in the canonical form colkey.Format prints
// (schema.table.column, a part holding a dot or quote in double quotes), to
// its rule.
type Rules map[string]Rule

// Identity is the canonical form of the transformer and its effective
// parameters. Two rules with the same identity give the same output for the
// same value, whatever column they are on: it is what the keyed PRF is
// derived from. Parameters spelled out at their default count the same as
// parameters left out, so `{ transform = "email" }` on one column and
// `{ transform = "email", unique = true }` on another still join.
func (r Rule) Identity() string {
	var b strings.Builder
	b.WriteString(r.Transform)
	if ps := r.effectiveParams(); len(ps) > 0 {
		canonical(&b, ps)
	}
	return b.String()
}

// effectiveParams is Params plus the default of every parameter the
// transformer reads and the rule leaves out, found by building the rule once
// against a throwaway key (always as text, so the identity never depends on
// the column's type).
func (r Rule) effectiveParams() map[string]any {
	build, ok := transformers[r.Transform]
	if !ok {
		return r.Params
	}
	p := &params{m: r.Params, used: map[string]bool{}, defaults: map[string]any{}}
	if _, err := build(p, make([]byte, KeySize), ColumnType{Base: "text"}, ""); err != nil || p.err != nil || len(p.defaults) == 0 {
		return r.Params
	}
	out := make(map[string]any, len(r.Params)+len(p.defaults))
	for k, v := range p.defaults {
		out[k] = v
	}
	for k, v := range r.Params {
		out[k] = v
	}
	return out
}

// String is the short human form used in the plan, e.g. `name (part=full)`.
// The unique parameter is left out: the plan says "(unique)" from the
// transformer itself.
func (r Rule) String() string {
	var keys []string
	for _, k := range sortedKeys(r.Params) {
		if k != "unique" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return r.Transform
	}
	var b strings.Builder
	b.WriteString(r.Transform)
	b.WriteString(" (")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		if k == "paths" {
			if m, ok := r.Params[k].(map[string]any); ok {
				b.WriteString(strings.Join(sortedKeys(m), "|"))
				continue
			}
		}
		canonical(&b, r.Params[k])
	}
	b.WriteByte(')')
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func canonical(b *strings.Builder, v any) {
	switch x := v.(type) {
	case map[string]any:
		b.WriteByte('{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k))
			b.WriteByte('=')
			canonical(b, x[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			canonical(b, e)
		}
		b.WriteByte(']')
	case string:
		b.WriteString(strconv.Quote(x))
	case float64:
		// 3 and 3.0 must be the same rule.
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			b.WriteString(strconv.FormatInt(int64(x), 10))
		} else {
			b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case int:
		b.WriteString(strconv.Itoa(x))
	default:
		fmt.Fprint(b, x)
	}
}

// ParseRules turns the config's [anonymize.columns] table into rules keyed
// by canonical key, checking every key, transformer name and parameter. Two
// spellings of one column (`public."users".email`, `public.users.email`) are
// an error. Errors name the key as the config spells it:
//
//	anonymize.columns."public.users.email": unknown transform "emial"
func ParseRules(columns map[string]map[string]any) (Rules, error) {
	rules := make(Rules, len(columns))
	spelled := make(map[string]string, len(columns))
	for _, key := range sortedKeys(columns) {
		canon, err := colkey.Canonical(key)
		if err != nil {
			return nil, fmt.Errorf("anonymize.columns.%q: %w", key, err)
		}
		if other, dup := spelled[canon]; dup {
			return nil, fmt.Errorf("anonymize.columns.%q: names the same column as %q", key, other)
		}
		spelled[canon] = key
		r, err := parseRule(key, columns[key])
		if err != nil {
			return nil, fmt.Errorf("anonymize.columns.%q: %w", key, err)
		}
		r.Column = canon
		rules[canon] = r
	}
	return rules, nil
}

func parseRule(key string, m map[string]any) (Rule, error) {
	name, ok := m["transform"].(string)
	if !ok {
		return Rule{}, fmt.Errorf("transform must name a transformer")
	}
	r := Rule{Transform: name, Params: map[string]any{}}
	for k, v := range m {
		if k != "transform" {
			r.Params[k] = v
		}
	}
	// Build once against a throwaway key so every parameter error surfaces at
	// config load, not halfway through a sync.
	if _, err := newTransformer(r, make([]byte, KeySize), ColumnType{Base: "text"}); err != nil {
		return Rule{}, err
	}
	return r, nil
}
