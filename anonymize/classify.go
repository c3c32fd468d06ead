package anonymize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// textual types can hold any PII; detection reads their sampled values.
func textual(base string) bool {
	switch strings.TrimPrefix(base, "_") {
	case "text", "varchar", "bpchar", "citext", "name", "json", "jsonb", "xml", "char":
		return true
	}
	return false
}

func isJSONType(base string) bool { return base == "json" || base == "jsonb" }

// kindFits says whether a name-detected kind can live in a column of this
// type: "email_verified boolean" is not an email, "birth_date date" is a
// date of birth.
func kindFits(kind, base string) bool {
	if textual(base) {
		return true
	}
	switch base {
	case "date", "timestamp", "timestamptz":
		return kind == KindBirthDate
	case "inet", "cidr":
		return kind == KindIP
	case "int2", "int4", "int8", "numeric":
		return kind == KindPhone || kind == KindCard || kind == KindNationalID || kind == KindIBAN || kind == KindLocation
	case "float4", "float8", "point":
		return kind == KindLocation
	case "bytea":
		return kind == KindSecret
	}
	return false
}

// detection is what the detectors conclude about one column.
type detection struct {
	kind    string
	reasons []string
	// jsonPaths: for json columns, the PII found at each path (path → kind).
	jsonPaths map[string]string
}

func (d *detection) reason() string { return strings.Join(d.reasons, "; ") }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// detect classifies a column from its name, its type and its samples. nil
// means no sign of PII.
func detect(t *Table, c *Column) *detection {
	d := &detection{}
	if k, why := nameKind(t.Name, c.Name); k != "" && kindFits(k, c.Base) && !surrogateKey(c) &&
		!(k == KindLocation && !textual(c.Base) && !latLng(c.Name)) {
		d.kind = k
		d.reasons = append(d.reasons, why)
	}
	if c.Base == "inet" || c.Base == "cidr" {
		if d.kind == "" {
			d.kind = KindIP
		}
		d.reasons = append(d.reasons, "type "+c.Type+" holds IP addresses")
	}
	if isJSONType(c.Base) {
		d.jsonPaths = map[string]string{}
		for _, s := range c.Samples {
			var v any
			if json.Unmarshal(s, &v) == nil {
				walkJSON(t.Name, "", v, d.jsonPaths)
			}
		}
		if len(d.jsonPaths) > 0 {
			if d.kind == "" {
				d.kind = KindFreeText
			}
			d.reasons = append(d.reasons, "sampled JSON has PII at "+describePaths(d.jsonPaths))
		}
	} else if textual(c.Base) && len(c.Samples) > 0 {
		whole := map[string]int{}
		embedded := map[string]int{}
		samples := c.Samples
		if strings.HasPrefix(c.Base, "_") {
			samples = nil
			for _, s := range c.Samples {
				samples = append(samples, arrayElements(s)...)
			}
		}
		for _, s := range samples {
			if k := valueKind(s); k != "" {
				whole[k]++
			} else if k := embeddedKind(s); k != "" {
				embedded[k]++
			}
		}
		n := len(samples)
		for _, k := range sortedKeys(whole) {
			// A lone phone-shaped value in a column of codes is noise; a
			// lone email or card number is not.
			if k == KindPhone && whole[k]*3 < n {
				continue
			}
			if d.kind == "" || d.kind == KindFreeText {
				d.kind = k
			}
			d.reasons = append(d.reasons, fmt.Sprintf("%d/%d sampled values %s %s", whole[k], n, plural(whole[k], "is", "are"), kindNoun(k, whole[k] != 1)))
		}
		for _, k := range sortedKeys(embedded) {
			if d.kind == "" {
				d.kind = KindFreeText
			}
			d.reasons = append(d.reasons, fmt.Sprintf("%d/%d sampled values contain %s", embedded[k], n, kindNoun(k, embedded[k] != 1)))
		}
	}
	if d.kind == "" {
		return nil
	}
	return d
}

func kindNoun(k string, many bool) string {
	noun := map[string]string{KindEmail: "an email", KindPhone: "a phone number", KindCard: "a card number (Luhn)",
		KindIBAN: "an IBAN (mod 97)", KindNationalID: "a national id (US SSN)", KindIP: "an IP address"}[k]
	if noun == "" {
		noun = k
	}
	if many {
		noun = strings.TrimPrefix(strings.TrimPrefix(noun, "an "), "a ")
		if i := strings.IndexByte(noun, ' '); i > 0 && noun[i+1] == '(' {
			noun = noun[:i] + "s" + noun[i:]
		} else if !strings.Contains(noun, "(") {
			noun += "s"
		}
	}
	return noun
}

// walkJSON records PII found under each key path (array indexes dropped).
func walkJSON(table, path string, v any, found map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			seg := k
			if !identKey(k) {
				// Keys are data too ({"jane@x.com": ...}); the plan shows
				// paths, so a key that is not a plain identifier becomes *.
				seg = "*"
			}
			p := seg
			if path != "" {
				p = path + "." + seg
			}
			if s, ok := c.(string); ok || isScalar(c) {
				if kk, _ := nameKind(table, k); kk != "" {
					found[p] = kk
					continue
				}
				if ok {
					if kk := valueKind([]byte(s)); kk != "" {
						found[p] = kk
					} else if kk := embeddedKind([]byte(s)); kk != "" {
						found[p] = KindFreeText
					}
				}
				continue
			}
			walkJSON(table, p, c, found)
		}
	case []any:
		for _, c := range x {
			if s, ok := c.(string); ok {
				if kk := valueKind([]byte(s)); kk != "" && path != "" {
					found[path] = kk
				}
				continue
			}
			walkJSON(table, path, c, found)
		}
	}
}

func isScalar(v any) bool {
	switch v.(type) {
	case float64, bool, nil, json.Number:
		return true
	}
	return false
}

func describePaths(m map[string]string) string {
	var parts []string
	for _, p := range sortedKeys(m) {
		parts = append(parts, p+" ("+m[p]+")")
	}
	return strings.Join(parts, ", ")
}

// uncoveredPaths lists the detected JSON paths a json rule's paths do not
// mask.
func uncoveredPaths(detected map[string]string, r Rule) map[string]string {
	var rulePaths [][]string
	if m, ok := r.Params["paths"].(map[string]any); ok {
		for p := range m {
			rulePaths = append(rulePaths, splitJSONPath(p))
		}
	}
	out := map[string]string{}
	for p, k := range detected {
		segs := strings.Split(p, ".")
		covered := false
		for _, rp := range rulePaths {
			if pathCovers(rp, segs) {
				covered = true
				break
			}
		}
		if !covered {
			out[p] = k
		}
	}
	return out
}

// pathCovers: rule path rp masks everything at or below it ("*" = any key).
func pathCovers(rp, segs []string) bool {
	if len(rp) > len(segs) {
		return false
	}
	for i, s := range rp {
		if s != "*" && s != segs[i] {
			return false
		}
	}
	return true
}

// defaultRule is the transformer the "mask" policy applies to a column
// detected as PII, by kind and type. unique asks for a uniqueness-preserving
// one.
func defaultRule(c *Column, d *detection, unique bool) Rule {
	r := func(t string, kv ...any) Rule {
		p := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			p[kv[i].(string)] = kv[i+1]
		}
		return Rule{Transform: t, Params: p}
	}
	switch {
	case isJSONType(c.Base):
		paths := map[string]any{}
		for _, p := range sortedKeys(d.jsonPaths) {
			paths[p] = map[string]any{"transform": jsonLeafTransform(d.jsonPaths[p])}
		}
		if len(paths) == 0 {
			return r("null")
		}
		return r("json", "paths", paths)
	case c.Base == "inet" || c.Base == "cidr":
		return r("ip")
	case c.Base == "date" || c.Base == "timestamp" || c.Base == "timestamptz":
		return r("date")
	case c.Base == "uuid":
		return r("uuid")
	case c.Base == "int2" || c.Base == "int4" || c.Base == "int8" || c.Base == "numeric" || c.Base == "float4" || c.Base == "float8":
		return r("number")
	case !textual(c.Base) || c.Base == "_json" || c.Base == "_jsonb" || c.Base == "_xml" || c.Base == "xml":
		return r("null")
	}
	switch d.kind {
	case KindEmail:
		return r("email")
	case KindPhone:
		return r("phone")
	case KindName:
		if unique {
			return r("name", "unique", true)
		}
		return r("name")
	case KindAddress:
		n := strings.ToLower(c.Name)
		switch {
		case strings.Contains(n, "city"):
			return r("address", "part", "city")
		case strings.Contains(n, "zip") || strings.Contains(n, "post"):
			return r("address", "part", "postcode")
		}
		return r("address")
	case KindIP:
		return r("ip")
	case KindFreeText:
		// Free text has no shape to imitate; emptying it is the honest mask.
		return r("null")
	}
	return r("hash")
}

func jsonLeafTransform(kind string) string {
	switch kind {
	case KindEmail:
		return "email"
	case KindPhone:
		return "phone"
	case KindName:
		return "name"
	case KindAddress:
		return "address"
	case KindIP:
		return "ip"
	}
	return "hash"
}

// sampleErrors runs a transformer over a column's samples so type problems
// (a date rule on a text column in another DateStyle) fail at plan time.
func sampleErrors(t Transformer, c *Column) (failed int, first error) {
	var buf []byte
	for _, s := range c.Samples {
		var err error
		buf, _, err = t.Append(buf[:0], s)
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	return failed, first
}

var _ = bytes.Equal
var _ = sort.Strings

func identKey(k string) bool {
	if k == "" || len(k) > 63 || valueKind([]byte(k)) != "" {
		return false
	}
	for i, c := range k {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// surrogateKey: phone_id integer, email_id uuid are references, not PII.
func surrogateKey(c *Column) bool {
	n := strings.ToLower(c.Name)
	if !(strings.HasSuffix(n, "_id") || strings.HasSuffix(n, "_ids") || strings.HasSuffix(n, "id") && len(n) > 2 && n[len(n)-3] == '_') {
		return false
	}
	switch strings.TrimPrefix(c.Base, "_") {
	case "int2", "int4", "int8", "uuid", "numeric":
		return true
	}
	return false
}

func latLng(name string) bool {
	for _, t := range strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return r == '_' }) {
		switch t {
		case "lat", "lng", "lon", "latitude", "longitude":
			return true
		}
	}
	return false
}
