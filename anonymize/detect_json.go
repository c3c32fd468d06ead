package anonymize

import (
	"encoding/json"
	"strings"
)

// jsonLeaf gathers, for one key path of the sampled documents, the words
// of its keys and its scalar values.
type jsonLeaf struct {
	keys   words // parent keys then the key itself
	values [][]byte
}

// detectJSON classifies every key path of a json(b) column's samples as a
// column of its own: the key is its name (parent keys qualify it:
// "billing.city"), the values at the path are its samples.
func detectJSON(x *tableContext, c *Column, h hint, d *detection) *detection {
	leaves := map[string]*jsonLeaf{}
	for _, s := range c.Samples {
		dec := json.NewDecoder(strings.NewReader(string(s)))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			walkJSON("", words{}, v, leaves)
		}
	}
	d.jsonPaths = map[string]string{}
	for _, p := range sortedKeys(leaves) {
		l := leaves[p]
		lc := &Column{Name: strings.Join(l.keys.raw, "_"), Base: "text", Type: "json leaf", Samples: l.values}
		lh := nameHint(x, l.keys, lc)
		if len(l.keys.raw) == 0 {
			lh = hint{}
		}
		ld := decide(x, lh, analyse(l.values, false), &detection{}, true)
		if ld != nil && ld.kind != "" {
			d.jsonPaths[p] = ld.kind
		}
	}
	if h.kind != "" && !h.weak {
		d.kind = h.kind
		d.reasons = append(d.reasons, h.why)
	}
	if len(d.jsonPaths) > 0 {
		if d.kind == "" {
			d.kind = KindFreeText
		}
		d.reasons = append(d.reasons, "sampled JSON has PII at "+describePaths(d.jsonPaths))
	}
	if d.kind == "" {
		return nil
	}
	return d
}

// walkJSON records every key path (array indexes dropped) with its words
// and scalar values. Keys that are not plain identifiers are data
// ({"jane@x.com": ...}): the plan shows them as *, and they name nothing.
func walkJSON(path string, parents words, v any, leaves map[string]*jsonLeaf) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			seg, kw := k, readName(k)
			if !identKey(k) {
				seg, kw = "*", words{}
			}
			p := seg
			if path != "" {
				p = path + "." + seg
			}
			w := words{raw: append(append([]string{}, parents.raw...), kw.raw...), cons: append(append([]string{}, parents.cons...), kw.cons...)}
			if len(kw.raw) == 0 {
				w = words{}
			}
			switch cv := c.(type) {
			case map[string]any:
				walkJSON(p, w, cv, leaves)
			case []any:
				for _, e := range cv {
					if isScalar(e) || isString(e) {
						addLeaf(leaves, p, w, e)
					} else {
						walkJSON(p, w, e, leaves)
					}
				}
			default:
				addLeaf(leaves, p, w, c)
			}
		}
	case []any:
		for _, c := range x {
			if m, ok := c.(map[string]any); ok {
				walkJSON(path, parents, m, leaves)
			} else if path != "" && (isScalar(c) || isString(c)) {
				addLeaf(leaves, path, parents, c)
			}
		}
	}
}

func addLeaf(leaves map[string]*jsonLeaf, p string, w words, v any) {
	l := leaves[p]
	if l == nil {
		l = &jsonLeaf{keys: w}
		leaves[p] = l
	}
	switch s := v.(type) {
	case string:
		l.values = append(l.values, []byte(s))
	case json.Number:
		l.values = append(l.values, []byte(s))
	}
}

func isString(v any) bool { _, ok := v.(string); return ok }

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
