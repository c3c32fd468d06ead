package anonymize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strings"

	"github.com/pgtwin/pgtwin/internal/colkey"
)

// Detector finds one kind of PII in a value. Find reports the matching part
// (to be redacted, never shown raw).
type Detector struct {
	Name string
	Find func(v []byte) (match []byte, ok bool)
}

// LeakDetectors are the detectors `pgtwin mask check` runs by default: PII
// shapes that masked output never has. Masked emails use reserved domains
// (example.com, .example, .test, .invalid) and are not reported; phone
// shapes are not checked because masked phones keep them (exact values
// catch real ones).
func LeakDetectors() []Detector {
	return []Detector{
		{Name: "email", Find: func(v []byte) ([]byte, bool) {
			return findWord(v, func(w []byte) bool { return isEmail(w) && !reservedEmail(w) })
		}},
		{Name: "card number (Luhn)", Find: func(v []byte) ([]byte, bool) {
			if m, ok := findWord(v, isCard); ok {
				return m, true
			}
			if d, ok := cardRun(v); ok {
				return d, true
			}
			return nil, false
		}},
		{Name: "iban (mod 97)", Find: func(v []byte) ([]byte, bool) {
			if isIBAN(bytes.TrimSpace(v)) {
				return v, true
			}
			return findWord(v, isIBAN)
		}},
		{Name: "national id (US SSN)", Find: func(v []byte) ([]byte, bool) { return findWord(v, isSSN) }},
	}
}

func reservedEmail(w []byte) bool {
	d := strings.ToLower(string(w[bytes.LastIndexByte(w, '@')+1:]))
	switch d {
	case "example.com", "example.net", "example.org":
		return true
	}
	for _, tld := range []string{".example", ".test", ".invalid", ".localhost"} {
		if strings.HasSuffix(d, tld) {
			return true
		}
	}
	return false
}

func splitWords(v []byte) [][]byte {
	return bytes.FieldsFunc(v, func(r rune) bool {
		switch r {
		case ' ', '\t', '\n', '\r', ',', ';', '(', ')', '"', '\'', '<', '>', ':', '[', ']', '{', '}', '=':
			return true
		}
		return false
	})
}

func findWord(v []byte, pred func([]byte) bool) ([]byte, bool) {
	if pred(v) {
		return v, true
	}
	for _, w := range splitWords(v) {
		w = bytes.TrimRight(w, ".!?")
		if pred(w) {
			return w, true
		}
	}
	return nil, false
}

// Finding is one value that looks like it escaped masking. It never holds
// the value itself: only a redacted form.
type Finding struct {
	Schema   string `json:"schema"`
	Table    string `json:"table"`
	Column   string `json:"column"`
	Row      string `json:"row,omitempty"` // the scanner's row position, e.g. ctid
	Detector string `json:"detector"`
	Redacted string `json:"redacted"`
}

func (f Finding) String() string {
	s := colkey.Format(f.Schema, f.Table, f.Column)
	if f.Row != "" {
		s += " row " + f.Row
	}
	return s + ": " + f.Detector + " " + f.Redacted
}

// Checker is the leak check: detectors plus exact values sampled from the
// source. The exact values are kept only as keyed 64-bit hashes, in memory.
type Checker struct {
	detectors []Detector
	seed      maphash.Seed
	exact     map[uint64]struct{}
	ignore    map[string]bool // schema.table.column
}

// minExact: shorter sampled values ("NY", "42") appear in masked data by
// chance and would only make noise.
const minExact = 5

// NewChecker builds a leak checker. exactValues are sampled source values of
// masked columns (see Plan.SampledValues); the slices are not retained.
func NewChecker(detectors []Detector, exactValues [][]byte) *Checker {
	c := &Checker{detectors: detectors, seed: maphash.MakeSeed(), exact: map[uint64]struct{}{}}
	for _, v := range exactValues {
		v = bytes.TrimSpace(v)
		if len(v) >= minExact {
			c.exact[maphash.Bytes(c.seed, v)] = struct{}{}
		}
	}
	return c
}

// Ignore stops the checker reporting a column: one the config explicitly
// keeps (a support address, a company phone) is not a leak.
func (c *Checker) Ignore(schema, table, column string) {
	if c.ignore == nil {
		c.ignore = map[string]bool{}
	}
	c.ignore[colkey.Format(schema, table, column)] = true
}

// Checker is the leak checker `pgtwin mask check` uses: LeakDetectors, the
// plan's sampled values, and the columns the config keeps ignored.
func (p *Plan) Checker(key []byte) *Checker {
	c := NewChecker(LeakDetectors(), p.SampledValues(key))
	for _, t := range p.Tables {
		for _, cp := range t.Columns {
			if cp.Action == ActionKeep && cp.Source == SourceConfig {
				c.Ignore(t.Schema, t.Name, cp.Column)
			}
		}
	}
	return c
}

// ExactCount is how many distinct exact values the checker holds.
func (c *Checker) ExactCount() int { return len(c.exact) }

// Check looks at one value of schema.table.column (text form) and returns a
// Finding if it contains a sampled source value or PII a detector finds.
func (c *Checker) Check(schema, table, column string, value []byte) *Finding {
	if c.ignore[colkey.Format(schema, table, column)] {
		return nil
	}
	kind, match := c.check(value, true)
	if kind == "" {
		return nil
	}
	return &Finding{Schema: schema, Table: table, Column: column, Detector: kind, Redacted: Redact(match)}
}

func (c *Checker) check(v []byte, top bool) (string, []byte) {
	if c.isExact(v) {
		return "exact source value", v
	}
	t := bytes.TrimSpace(v)
	if top && len(t) > 1 && (t[0] == '{' || t[0] == '[') && json.Valid(t) {
		// JSON: check every string leaf on its own (exact values are leaves).
		var doc any
		if json.Unmarshal(t, &doc) == nil {
			var kind string
			var match []byte
			eachString(doc, func(s string) bool {
				kind, match = c.check([]byte(s), false)
				return kind == ""
			})
			if kind != "" {
				return kind, match
			}
		}
	}
	for _, w := range splitWords(v) {
		if c.isExact(bytes.TrimRight(w, ".!?")) {
			return "exact source value", w
		}
	}
	for _, d := range c.detectors {
		if m, ok := d.Find(v); ok {
			return d.Name, m
		}
	}
	return "", nil
}

func (c *Checker) isExact(v []byte) bool {
	if len(c.exact) == 0 {
		return false
	}
	v = bytes.TrimSpace(v)
	if len(v) < minExact {
		return false
	}
	_, ok := c.exact[maphash.Bytes(c.seed, v)]
	return ok
}

func eachString(v any, f func(string) bool) bool {
	switch x := v.(type) {
	case string:
		return f(x)
	case map[string]any:
		for _, c := range x {
			if !eachString(c, f) {
				return false
			}
		}
	case []any:
		for _, c := range x {
			if !eachString(c, f) {
				return false
			}
		}
	}
	return true
}

// Redact shows enough of a value to find it again, not enough to learn it:
// j***@e***.com for emails, the first character and the length otherwise.
func Redact(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return `""`
	}
	if at := bytes.LastIndexByte(v, '@'); at > 0 && isEmail(v) {
		dom := v[at+1:]
		dot := bytes.LastIndexByte(dom, '.')
		return fmt.Sprintf("%c***@%c***%s", v[0], dom[0], dom[dot:])
	}
	r := []rune(string(v))
	return fmt.Sprintf("%c*** (%d chars)", r[0], len(r))
}

// SampledValues returns the sampled source values of every masked column,
// for NewChecker: values that must not appear in the twin. Values a
// transformer leaves unchanged are left out, and for json columns the
// string leaves at the masked paths are used.
func (p *Plan) SampledValues(key []byte) [][]byte {
	var out [][]byte
	for _, tp := range p.Tables {
		for i, cp := range tp.Columns {
			if cp.Action != ActionMask || tp.table == nil {
				continue
			}
			col := &tp.table.Columns[i]
			tr, err := newTransformer(*cp.Rule, key, col.ColumnType())
			if err != nil || !exactSafe(tr) {
				continue
			}
			for _, s := range col.Samples {
				if jt, ok := tr.(*jsonT); ok {
					out = append(out, jt.leaves(s)...)
					continue
				}
				m, null, err := tr.Append(nil, s)
				if err == nil && !null && bytes.Equal(m, s) {
					continue
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// collector is a transformer that records what it is given, to pull the
// leaves at a json rule's paths out of a document.
type collector struct{ got [][]byte }

func (c *collector) Unique() bool { return true }
func (c *collector) Append(dst, v []byte) ([]byte, bool, error) {
	c.got = append(c.got, append([]byte(nil), v...))
	return append(dst, v...), false, nil
}

func (t *jsonT) leaves(doc []byte) [][]byte {
	c := &collector{}
	for _, p := range t.paths {
		if !exactSafe(p.t) {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return nil
		}
		applyJSON(v, p.segs, c)
	}
	return c.got
}

// exactSafe says whether a masked column's source values can serve as exact
// values for the leak check. Transformers that draw realistic values from a
// small set (first names, cities, shifted dates, noisy numbers) may output a
// real value from another row by chance; a leak check that reports those is
// noise, so their samples are left out.
func exactSafe(t Transformer) bool {
	switch x := t.(type) {
	case *nameT:
		return x.unique
	case *addressT:
		return x.unique || x.part == "street" || x.part == "full"
	case *dateT, *numberT, keepT:
		return false
	case fitLength:
		return exactSafe(x.t)
	}
	return true
}
