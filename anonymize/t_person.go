package anonymize

import (
	"bytes"
	"strings"

	"github.com/brianvoe/gofakeit/v7/data"
)

// Realistic values come from gofakeit's word lists, indexed by keyed bits:
// one CMAC per value instead of seeding a generator per value.
var (
	firstNames  = data.Person["first"]
	lastNames   = data.Person["last"]
	firstLower  = lowerAll(firstNames)
	lastLower   = lowerAll(lastNames)
	streetNames = data.Address["street_name"]
	cities      = data.Address["city"]
	states      = data.Address["state"]
	// RFC 2606 reserved domains: a masked address can never reach a real
	// mailbox, and the leak check can tell masked emails from real ones.
	maskDomains = []string{"example.com", "example.net", "example.org"}
)

const base32 = "abcdefghijklmnopqrstuvwxyz234567"

func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

// tagBits is how many keyed bits unique modes append. With the name choice
// (~19 bits) a collision among 10^9 distinct inputs has probability ~4e-4;
// among 10^6, ~4e-10.
const tagBits = 50

func appendTag(dst []byte, b *bits, n int) []byte {
	for i := 0; i < n; i++ {
		dst = append(dst, base32[b.u(5)])
	}
	return dst
}

type emailT struct {
	p          *prf
	unique     bool
	domain     string
	keepDomain bool
}

func init() {
	register("email", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		t := &emailT{
			unique:     p.boolean("unique", true),
			domain:     p.str("domain", ""),
			keepDomain: p.boolean("keep_domain", false),
		}
		t.p = newPRF(key, id)
		return t, nil
	})
	register("name", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		t := &nameT{part: p.oneOf("part", "full", "first", "last", "full"), unique: p.boolean("unique", false)}
		t.p = newPRF(key, id)
		return t, nil
	})
	register("phone", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		t := &phoneT{keep: p.integer("keep_prefix", 0, 0, 8)}
		t.p = newPRF(key, id)
		return t, nil
	})
	register("address", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		t := &addressT{part: p.oneOf("part", "street", "street", "city", "state", "postcode", "full"), unique: p.boolean("unique", false)}
		t.p = newPRF(key, id)
		return t, nil
	})
}

func (t *emailT) Unique() bool { return t.unique }

// Append writes first.last[.tag]@domain. In unique mode the tag carries 50
// keyed bits; otherwise two keyed digits give some variety.
func (t *emailT) Append(dst, v []byte) ([]byte, bool, error) { return redraw(t, dst, v) }

func (t *emailT) appendAttempt(dst, v []byte, attempt int) ([]byte, bool, error) {
	b := t.p.streamAttempt(v, attempt)
	dst = append(dst, firstLower[b.take(len(firstLower))]...)
	dst = append(dst, '.')
	dst = append(dst, lastLower[b.take(len(lastLower))]...)
	if t.unique {
		dst = append(dst, '.')
		dst = appendTag(dst, &b, tagBits/5)
	} else {
		n := b.take(100)
		dst = append(dst, byte('0'+n/10), byte('0'+n%10))
	}
	dst = append(dst, '@')
	switch {
	case t.keepDomain && bytes.LastIndexByte(v, '@') >= 0:
		dst = append(dst, v[bytes.LastIndexByte(v, '@')+1:]...)
	case t.domain != "":
		dst = append(dst, t.domain...)
	default:
		dst = append(dst, maskDomains[b.take(len(maskDomains))]...)
	}
	return dst, false, nil
}

// compact is the short form for narrow columns: f.tag@example.com, same
// keyed bits as Append's tag.
func (t *emailT) compact(dst, v []byte) []byte {
	return t.compactAttempt(dst, v, 0)
}

func (t *emailT) compactAttempt(dst, v []byte, attempt int) []byte {
	b := t.p.streamAttempt(v, attempt)
	dst = append(dst, firstLower[b.take(len(firstLower))][0], '.')
	b.take(len(lastLower))
	dst = appendTag(dst, &b, tagBits/5)
	dst = append(dst, '@')
	if t.domain != "" {
		return append(dst, t.domain...)
	}
	return append(dst, maskDomains[b.take(len(maskDomains))]...)
}

type nameT struct {
	p      *prf
	part   string
	unique bool
}

func (t *nameT) Unique() bool { return t.unique }

func (t *nameT) Append(dst, v []byte) ([]byte, bool, error) { return redraw(t, dst, v) }

func (t *nameT) appendAttempt(dst, v []byte, attempt int) ([]byte, bool, error) {
	b := t.p.streamAttempt(v, attempt)
	start := len(dst)
	switch t.part {
	case "first":
		dst = append(dst, firstNames[b.take(len(firstNames))]...)
	case "last":
		dst = append(dst, lastNames[b.take(len(lastNames))]...)
	default:
		dst = append(dst, firstNames[b.take(len(firstNames))]...)
		dst = append(dst, ' ')
		dst = append(dst, lastNames[b.take(len(lastNames))]...)
	}
	if t.unique {
		dst = append(dst, ' ')
		dst = appendTag(dst, &b, tagBits/5)
	}
	// Keep the source's case style, so upper-cased legacy data stays so.
	if isUpper(v) {
		upperASCII(dst[start:])
	} else if isLower(v) {
		lowerASCII(dst[start:])
	}
	return dst, false, nil
}

func isUpper(v []byte) bool {
	letters := false
	for _, c := range v {
		if c >= 'a' && c <= 'z' {
			return false
		}
		letters = letters || c >= 'A' && c <= 'Z'
	}
	return letters
}

func isLower(v []byte) bool {
	letters := false
	for _, c := range v {
		if c >= 'A' && c <= 'Z' {
			return false
		}
		letters = letters || c >= 'a' && c <= 'z'
	}
	return letters
}

func upperASCII(b []byte) {
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
}

func lowerASCII(b []byte) {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
}

type addressT struct {
	p      *prf
	part   string
	unique bool
}

// Unique mode appends a keyed unit ("Unit K3X9Q2M7AB"), for addresses under
// a UNIQUE constraint.
func (t *addressT) Unique() bool { return t.unique }

func (t *addressT) Append(dst, v []byte) ([]byte, bool, error) { return redraw(t, dst, v) }

func (t *addressT) appendAttempt(dst, v []byte, attempt int) ([]byte, bool, error) {
	b := t.p.streamAttempt(v, attempt)
	switch t.part {
	case "city":
		dst = append(dst, cities[b.take(len(cities))]...)
	case "state":
		dst = append(dst, states[b.take(len(states))]...)
	case "postcode":
		if !hasAlnum(v) {
			// No digit or letter to replace: the shape alone would give
			// the value back, so write a keyed five-digit code instead.
			for i := 0; i < 5; i++ {
				dst = append(dst, byte('0'+b.take(10)))
			}
			break
		}
		dst = appendShape(dst, v, &b)
	case "full":
		dst = appendStreet(dst, &b)
		dst = append(dst, ", "...)
		dst = append(dst, cities[b.take(len(cities))]...)
		dst = append(dst, ' ')
		for i := 0; i < 5; i++ {
			dst = append(dst, byte('0'+b.take(10)))
		}
	default:
		dst = appendStreet(dst, &b)
	}
	if t.unique {
		dst = append(dst, " Unit "...)
		start := len(dst)
		dst = appendTag(dst, &b, tagBits/5)
		upperASCII(dst[start:])
	}
	return dst, false, nil
}

func appendStreet(dst []byte, b *bits) []byte {
	n := 1 + b.take(9999)
	var num [4]byte
	i := len(num)
	for n > 0 {
		i--
		num[i] = byte('0' + n%10)
		n /= 10
	}
	dst = append(dst, num[i:]...)
	dst = append(dst, ' ')
	dst = append(dst, lastNames[b.take(len(lastNames))]...)
	dst = append(dst, ' ')
	return append(dst, streetNames[b.take(len(streetNames))]...)
}

// appendShape replaces every digit with a keyed digit and every ASCII letter
// with a keyed letter of the same case, keeping everything else: postcodes
// keep their national format ("SW1A 1AA", "75008", "K1A-0B1").
func appendShape(dst, v []byte, b *bits) []byte {
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			c = byte('0' + b.take(10))
		case c >= 'a' && c <= 'z':
			c = byte('a' + b.take(26))
		case c >= 'A' && c <= 'Z':
			c = byte('A' + b.take(26))
		}
		dst = append(dst, c)
	}
	return dst
}

func hasAlnum(v []byte) bool {
	for _, c := range v {
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}
