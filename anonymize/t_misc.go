package anonymize

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"unicode/utf8"
)

func init() {
	register("keep", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		return keepT{}, nil
	})
	register("null", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		return nullT{def: typeDefault(ct)}, nil
	})
	register("constant", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		if _, ok := p.m["value"]; !ok {
			return nil, fmt.Errorf("parameter \"value\" is required")
		}
		return constT{v: []byte(p.str("value", ""))}, nil
	})
	register("partial", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		t := partialT{first: p.integer("keep_first", 0, 0, 1<<20), last: p.integer("keep_last", 4, 0, 1<<20)}
		m := p.str("mask_char", "*")
		r, size := utf8.DecodeRuneInString(m)
		if size == 0 || size != len(m) {
			return nil, fmt.Errorf("parameter \"mask_char\" must be one character")
		}
		t.mask = r
		return t, nil
	})
	register("hash", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		t := &hashT{n: p.integer("length", 32, 8, 64)}
		if ct.Length > 0 && t.n > ct.Length {
			t.n = ct.Length
		}
		t.p = newPRF(key, id)
		return t, nil
	})
	register("uuid", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		return &uuidT{p: newPRF(key, id)}, nil
	})
	register("regex", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		pat := p.str("pattern", "")
		if pat == "" {
			return nil, fmt.Errorf("parameter \"pattern\" is required")
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fmt.Errorf("parameter \"pattern\": %w", err)
		}
		return regexT{re: re, repl: []byte(p.str("replace", ""))}, nil
	})
	register("ip", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		return &ipT{p: newPRF(key, id), cidr: ct.Base == "cidr"}, nil
	})
}

type keepT struct{}

func (keepT) Unique() bool { return true }
func (keepT) Append(dst, v []byte) ([]byte, bool, error) {
	return append(dst, v...), false, nil
}

// nullT writes NULL, or the type's neutral value when the column is NOT NULL.
type nullT struct{ def []byte }

func (nullT) Unique() bool { return false }
func (t nullT) Append(dst, v []byte) ([]byte, bool, error) {
	if t.def == nil {
		return dst, true, nil
	}
	return append(dst, t.def...), false, nil
}

// typeDefault is what "null" writes into a NOT NULL column: nil (NULL) for
// nullable ones.
func typeDefault(ct ColumnType) []byte {
	if !ct.NotNull {
		return nil
	}
	switch ct.Base {
	case "int2", "int4", "int8", "numeric", "float4", "float8", "money", "oid":
		return []byte("0")
	case "bool":
		return []byte("f")
	case "date":
		return []byte("1970-01-01")
	case "timestamp":
		return []byte("1970-01-01 00:00:00")
	case "timestamptz":
		return []byte("1970-01-01 00:00:00+00")
	case "time":
		return []byte("00:00:00")
	case "json", "jsonb":
		return []byte("{}")
	case "uuid":
		return []byte("00000000-0000-0000-0000-000000000000")
	case "inet", "cidr":
		return []byte("0.0.0.0/32")
	}
	if len(ct.Base) > 0 && ct.Base[0] == '_' {
		return []byte("{}")
	}
	return []byte{}
}

type constT struct{ v []byte }

func (constT) Unique() bool { return false }
func (t constT) Append(dst, v []byte) ([]byte, bool, error) {
	return append(dst, t.v...), false, nil
}

// partialT keeps the first and last characters and masks the rest, keeping
// the length. Values too short to hide anything are masked entirely.
type partialT struct {
	first, last int
	mask        rune
}

func (partialT) Unique() bool { return false }
func (t partialT) Append(dst, v []byte) ([]byte, bool, error) {
	n := utf8.RuneCount(v)
	i := 0
	for len(v) > 0 {
		r, size := utf8.DecodeRune(v)
		if n > t.first+t.last && (i < t.first || i >= n-t.last) {
			dst = append(dst, v[:size]...)
		} else {
			dst = utf8.AppendRune(dst, t.mask)
		}
		_ = r
		v = v[size:]
		i++
	}
	return dst, false, nil
}

type hashT struct {
	p *prf
	n int
}

// Unique: 96 keyed bits or more make a collision among 10^9 values
// improbable (< 1e-10).
func (t *hashT) Unique() bool                               { return t.n >= 24 }
func (t *hashT) Append(dst, v []byte) ([]byte, bool, error) { return redraw(t, dst, v) }

func (t *hashT) appendAttempt(dst, v []byte, attempt int) ([]byte, bool, error) {
	b := t.p.streamAttempt(v, attempt)
	h := b.h
	var buf [64]byte
	hex.Encode(buf[:32], h[:])
	if t.n > 32 {
		h2 := t.p.block(h)
		hex.Encode(buf[32:], h2[:])
	}
	// A hash of nothing but digits would pass for a card number (or an
	// order number) in the leak check now and then: make it start with a
	// letter.
	if allDigits(buf[:t.n]) {
		buf[0] = 'a' + (buf[0]-'0')%6
	}
	return append(dst, buf[:t.n]...), false, nil
}

// uuidT encrypts a uuid's 16 bytes with AES under the rule's subkey: a
// permutation, so distinct uuids stay distinct. Values that are not uuids
// (text columns) get a keyed version-4 uuid instead.
type uuidT struct{ p *prf }

func (t *uuidT) Unique() bool { return true }
func (t *uuidT) Append(dst, v []byte) ([]byte, bool, error) {
	var u [16]byte
	if parseUUID(&u, v) {
		// A permutation without fixed points (see derangeBlock): no uuid
		// masks to itself.
		u = t.p.derangeBlock(u)
	} else {
		// Text that is not a uuid cannot equal the uuid written for it.
		t.p.sum(&u, v)
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
	}
	return appendUUID(dst, u), false, nil
}

func parseUUID(u *[16]byte, v []byte) bool {
	if len(v) >= 2 && v[0] == '{' && v[len(v)-1] == '}' {
		v = v[1 : len(v)-1]
	}
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '-' {
			continue
		}
		if !isHex(c) || i+1 >= len(v) || !isHex(v[i+1]) || n == 16 {
			return false
		}
		u[n] = unhex(c)<<4 | unhex(v[i+1])
		n++
		i++
	}
	return n == 16
}

func appendUUID(dst []byte, u [16]byte) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return append(dst, buf[:]...)
}

type regexT struct {
	re   *regexp.Regexp
	repl []byte
}

func (regexT) Unique() bool { return false }
func (t regexT) Append(dst, v []byte) ([]byte, bool, error) {
	return append(dst, t.re.ReplaceAll(v, t.repl)...), false, nil
}

// ipT maps IPv4 to IPv4 with a keyed 32-bit Feistel permutation and IPv6 to
// IPv6 with AES (a 128-bit permutation), keeping any /prefix suffix: unique.
// For cidr columns the host bits must stay zero, so only the network is
// kept valid (not unique then).
type ipT struct {
	p    *prf
	cidr bool
}

func (t *ipT) Unique() bool { return !t.cidr }
func (t *ipT) Append(dst, v []byte) ([]byte, bool, error) {
	s := string(v)
	bitsLen := -1
	if pfx, err := netip.ParsePrefix(s); err == nil {
		s, bitsLen = pfx.Addr().String(), pfx.Bits()
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return dst, false, fmt.Errorf("ip: %w", errValue)
	}
	if a.Is4() {
		b := a.As4()
		x := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		a = t.mask4(x, bitsLen)
	} else {
		a = t.mask6(a.As16(), bitsLen)
	}
	if bitsLen >= 0 {
		pfx := netip.PrefixFrom(a, bitsLen)
		if t.cidr {
			pfx = pfx.Masked()
		}
		return append(dst, pfx.String()...), false, nil
	}
	return append(dst, a.String()...), false, nil
}

// mask4 is a permutation of IPv4 addresses without fixed points. A cidr
// column keeps only the network, which can still come out as it went in
// (one chance in 256 for a /8), so there the derangement is walked on
// until the network differs; a /0 has nothing to hide.
func (t *ipT) mask4(x uint64, bitsLen int) netip.Addr {
	y := t.p.derange32(x, 4)
	if t.cidr && bitsLen > 0 {
		net := uint64(1<<32-1) << (32 - min(bitsLen, 32)) & (1<<32 - 1)
		for i := 0; i < 1<<12 && y&net == x&net; i++ {
			y = t.p.derange32(y, 4)
		}
	}
	return netip.AddrFrom4([4]byte{byte(y >> 24), byte(y >> 16), byte(y >> 8), byte(y)})
}

func (t *ipT) mask6(x [16]byte, bitsLen int) netip.Addr {
	y := t.p.derangeBlock(x)
	if t.cidr && bitsLen > 0 {
		for i := 0; i < 1<<12 && netip.PrefixFrom(netip.AddrFrom16(y), bitsLen).Masked() == netip.PrefixFrom(netip.AddrFrom16(x), bitsLen).Masked(); i++ {
			y = t.p.derangeBlock(y)
		}
	}
	return netip.AddrFrom16(y)
}
