package anonymize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// jsonT applies other transformers at paths inside a json or jsonb value.
// Paths are dot separated keys ("contact.email"); "*" matches every key or
// array element, and a key applied to an array applies to each element
// ("phones.number"), as JSONPath's lax mode does. String leaves are masked as
// text; number leaves stay numbers when the output still is one.
type jsonT struct {
	paths []jsonPath
}

type jsonPath struct {
	segs []string
	t    Transformer
}

func init() {
	register("json", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		raw, ok := p.get("paths")
		m, isMap := raw.(map[string]any)
		if !ok || !isMap || len(m) == 0 {
			return nil, fmt.Errorf("parameter \"paths\" must map JSON paths to rules, e.g. paths = { \"contact.email\" = { transform = \"email\" } }")
		}
		t := &jsonT{}
		for _, path := range sortedKeys(m) {
			sub, ok := m[path].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("paths.%q must be a table with a transform", path)
			}
			r, err := parseNested(sub)
			if err != nil {
				return nil, fmt.Errorf("paths.%q: %w", path, err)
			}
			if r.Transform == "json" {
				return nil, fmt.Errorf("paths.%q: json cannot nest json", path)
			}
			tr, err := newTransformer(r, key, ColumnType{Base: "text"})
			if err != nil {
				return nil, fmt.Errorf("paths.%q: %w", path, err)
			}
			t.paths = append(t.paths, jsonPath{segs: splitJSONPath(path), t: tr})
		}
		return t, nil
	})
}

func parseNested(m map[string]any) (Rule, error) {
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
	return r, nil
}

func splitJSONPath(p string) []string {
	p = strings.TrimPrefix(strings.TrimPrefix(p, "$"), ".")
	p = strings.ReplaceAll(p, "[*]", ".*")
	var segs []string
	for _, s := range strings.Split(p, ".") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

func (t *jsonT) Unique() bool { return false }

func (t *jsonT) Append(dst, v []byte) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return dst, false, fmt.Errorf("json: %w", errValue)
	}
	for _, p := range t.paths {
		var err error
		doc, err = applyJSON(doc, p.segs, p.t)
		if err != nil {
			return dst, false, err
		}
	}
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return dst, false, fmt.Errorf("json: encode: %w", err)
	}
	out := buf.Bytes()
	return out[:len(out)-1], false, nil // Encode adds a newline
}

func applyJSON(node any, segs []string, t Transformer) (any, error) {
	if len(segs) == 0 {
		return maskLeaf(node, t)
	}
	switch n := node.(type) {
	case map[string]any:
		if segs[0] == "*" {
			for k, c := range n {
				r, err := applyJSON(c, segs[1:], t)
				if err != nil {
					return nil, err
				}
				n[k] = r
			}
		} else if c, ok := n[segs[0]]; ok {
			r, err := applyJSON(c, segs[1:], t)
			if err != nil {
				return nil, err
			}
			n[segs[0]] = r
		}
	case []any:
		rest := segs
		if segs[0] == "*" {
			rest = segs[1:]
		}
		for i, c := range n {
			r, err := applyJSON(c, rest, t)
			if err != nil {
				return nil, err
			}
			n[i] = r
		}
	}
	return node, nil
}

func maskLeaf(node any, t Transformer) (any, error) {
	switch x := node.(type) {
	case string:
		out, null, err := t.Append(nil, []byte(x))
		if err != nil || null {
			return nil, err
		}
		return string(out), nil
	case json.Number:
		out, null, err := t.Append(nil, []byte(x))
		if err != nil || null {
			return nil, err
		}
		if isJSONNumber(out) {
			return json.Number(out), nil
		}
		return string(out), nil
	case []any:
		// A path ending at an array masks each element.
		for i, c := range x {
			r, err := maskLeaf(c, t)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	case map[string]any:
		// A whole object under a masked path: mask its leaves, never keep
		// them unmasked.
		for k, c := range x {
			r, err := maskLeaf(c, t)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	}
	return node, nil
}

func isJSONNumber(b []byte) bool {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil || d.More() {
		return false
	}
	_, ok := v.(json.Number)
	return ok
}
