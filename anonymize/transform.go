package anonymize

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Transformer masks one value. Input and output are PostgreSQL text
// representations (COPY decoded). Input is never NULL: NULL stays NULL.
type Transformer interface {
	// Append appends the masked form of v to dst. null reports that the
	// output is SQL NULL (dst is then returned unchanged).
	Append(dst, v []byte) (out []byte, null bool, err error)
	// Unique reports whether distinct inputs give distinct outputs, which
	// UNIQUE and PRIMARY KEY columns need.
	Unique() bool
}

// ColumnType is what a transformer may need to know about its column to keep
// the output valid for it.
type ColumnType struct {
	Base      string // pg_type.typname of the column (element type for arrays not used)
	Precision int    // numeric(p,s): p; 0 when unconstrained
	Scale     int    // numeric(p,s): s; -1 when unconstrained
	Length    int    // varchar(n)/char(n): n; 0 when unconstrained
	NotNull   bool
}

// errValue is returned (wrapped with the transformer name) when a value does
// not parse for a transformer that needs structure (date, number, ip). The
// value itself is never part of the error.
var errValue = errors.New("value does not parse")

type builder func(p *params, key []byte, ct ColumnType, identity string) (Transformer, error)

var transformers = map[string]builder{}

func register(name string, b builder) { transformers[name] = b }

// TransformerNames lists the transformers rules may name.
func TransformerNames() []string {
	names := make([]string, 0, len(transformers))
	for n := range transformers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NewTransformer builds the transformer a rule names, keyed with key and
// bound to the column type (for range and precision checks).
func NewTransformer(r Rule, key []byte, ct ColumnType) (Transformer, error) {
	return newTransformer(r, key, ct)
}

func newTransformer(r Rule, key []byte, ct ColumnType) (Transformer, error) {
	b, ok := transformers[r.Transform]
	if !ok {
		return nil, fmt.Errorf("unknown transform %q (known: %s)", r.Transform, strings.Join(TransformerNames(), ", "))
	}
	p := &params{m: r.Params, used: map[string]bool{}}
	t, err := b(p, key, ct, r.Identity())
	if err != nil {
		return nil, fmt.Errorf("transform %s: %w", r.Transform, err)
	}
	if err := p.err; err != nil {
		return nil, fmt.Errorf("transform %s: %w", r.Transform, err)
	}
	for _, k := range sortedKeys(r.Params) {
		if !p.used[k] {
			return nil, fmt.Errorf("transform %s: unknown parameter %q", r.Transform, k)
		}
	}
	if ct.Length > 0 {
		if _, ok := t.(nullT); !ok {
			t = fitLength{t: t, n: ct.Length}
		}
	}
	if strings.HasPrefix(ct.Base, "_") {
		switch t.(type) {
		case nullT, constT, keepT:
			// Whole-value transformers: the literal is replaced or kept as is.
		default:
			t = arrayT{t: t}
		}
	}
	return t, nil
}

// fitLength keeps output within varchar(n)/char(n): longer output would make
// the target reject the row. Emails fall back to a compact unique form
// (initial.tag@domain); other values are cut at n characters.
type fitLength struct {
	t Transformer
	n int
}

// Unique: cutting output can merge values, so a unique transformer stays
// unique only where the column is wide enough for its distinguishing part.
func (f fitLength) Unique() bool {
	if !f.t.Unique() {
		return false
	}
	switch f.t.(type) {
	case *phoneT, keepT, *hashT:
		return true // same length as the input / already sized to the column
	case *emailT:
		return f.n >= 24 // the compact form
	case *uuidT:
		return f.n >= 36
	}
	return f.n >= 64
}

// Append cuts the output; cutting can give the input back ("Bob" from
// "Bobby Smith" in a varchar(3)), so transformers that can draw again do.
func (f fitLength) Append(dst, v []byte) ([]byte, bool, error) {
	r, ok := f.t.(redrawer)
	if !ok {
		return f.appendAttempt(dst, v, -1)
	}
	return redraw(fitRedraw{f, r}, dst, v)
}

type fitRedraw struct {
	f fitLength
	r redrawer
}

func (x fitRedraw) appendAttempt(dst, v []byte, attempt int) ([]byte, bool, error) {
	return x.f.appendAttempt(dst, v, attempt)
}

// appendAttempt: attempt -1 is the inner transformer's Append.
func (f fitLength) appendAttempt(dst, v []byte, attempt int) ([]byte, bool, error) {
	start := len(dst)
	var out []byte
	var null bool
	var err error
	if attempt < 0 {
		out, null, err = f.t.Append(dst, v)
	} else {
		out, null, err = f.t.(redrawer).appendAttempt(dst, v, attempt)
	}
	if err != nil || null || utf8.RuneCount(out[start:]) <= f.n {
		return out, null, err
	}
	if e, ok := f.t.(*emailT); ok {
		out = e.compactAttempt(out[:start], v, max(attempt, 0))
		if len(out)-start <= f.n {
			return out, false, nil
		}
	}
	cut, n := start, 0
	for cut < len(out) && n < f.n {
		_, size := utf8.DecodeRune(out[cut:])
		cut += size
		n++
	}
	return out[:cut], false, nil
}

// params reads typed parameters and remembers the first error and which keys
// were read, so unknown keys are reported.
type params struct {
	m    map[string]any
	used map[string]bool
	err  error
	// defaults records the value each parameter the rule left out took, so
	// a rule's identity covers its effective parameters (see Rule.Identity).
	defaults map[string]any
}

func (p *params) get(name string) (any, bool) {
	p.used[name] = true
	v, ok := p.m[name]
	return v, ok
}

func (p *params) defaulted(name string, v any) {
	if p.defaults != nil {
		p.defaults[name] = v
	}
}

func (p *params) fail(format string, a ...any) {
	if p.err == nil {
		p.err = fmt.Errorf(format, a...)
	}
}

func (p *params) str(name, def string) string {
	v, ok := p.get(name)
	if !ok {
		p.defaulted(name, def)
		return def
	}
	s, ok := v.(string)
	if !ok {
		p.fail("parameter %q must be a string", name)
	}
	return s
}

func (p *params) boolean(name string, def bool) bool {
	v, ok := p.get(name)
	if !ok {
		p.defaulted(name, def)
		return def
	}
	b, ok := v.(bool)
	if !ok {
		p.fail("parameter %q must be true or false", name)
	}
	return b
}

func (p *params) num(name string, def float64) float64 {
	v, ok := p.get(name)
	if !ok {
		p.defaulted(name, def)
		return def
	}
	switch x := v.(type) {
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case float64:
		return x
	}
	p.fail("parameter %q must be a number", name)
	return def
}

func (p *params) integer(name string, def, min, max int) int {
	f := p.num(name, float64(def))
	n := int(f)
	if float64(n) != f || n < min || n > max {
		p.fail("parameter %q must be a whole number from %d to %d", name, min, max)
		return def
	}
	return n
}

func (p *params) oneOf(name, def string, allowed ...string) string {
	s := p.str(name, def)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	p.fail("parameter %q must be one of %s", name, strings.Join(allowed, ", "))
	return def
}
