package anonymize

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// prf is the keyed pseudo-random function behind every transformer.
//
// The rule's subkey is HMAC-SHA256(master key, "pgtwin/anonymize/v1" || rule
// identity), truncated to 128 bits; values are then hashed with AES-128-CMAC
// under that subkey (AES-128: the Feistel rounds of phone masking are
// latency-bound, and 10 AES rounds are 30% quicker than 14). Both
// are standard PRFs; CMAC costs one AES block per 16 bytes of input (~16 ns
// here) where HMAC-SHA256 costs ~300 ns per value, which is what makes masking
// cheap enough to run in the replication stream. The output depends only on
// key, rule identity and value: never on table or column.
//
// A prf keeps a scratch block so AES calls through the cipher.Block
// interface do not make every value escape to the heap: it is not safe for
// concurrent use, like the TableMasker that owns it.
type prf struct {
	b      cipher.Block
	k1, k2 [16]byte
	x      [16]byte
}

func newPRF(key []byte, identity string) *prf {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("pgtwin/anonymize/v1\x00"))
	m.Write([]byte(identity))
	return newCMAC(m.Sum(nil)[:16])
}

// newCMAC is AES-CMAC (RFC 4493) under an AES key.
func newCMAC(aesKey []byte) *prf {
	b, err := aes.NewCipher(aesKey)
	if err != nil {
		panic(err) // 16-byte key: cannot fail
	}
	p := &prf{b: b}
	var l [16]byte
	b.Encrypt(l[:], l[:])
	p.k1 = dbl(l)
	p.k2 = dbl(p.k1)
	return p
}

// dbl is multiplication by x in GF(2^128), as CMAC subkey generation needs.
func dbl(in [16]byte) [16]byte {
	var out [16]byte
	carry := in[0] >> 7
	for i := 0; i < 15; i++ {
		out[i] = in[i]<<1 | in[i+1]>>7
	}
	out[15] = in[15] << 1
	if carry != 0 {
		out[15] ^= 0x87
	}
	return out
}

// sum writes CMAC(msg) to out.
func (p *prf) sum(out *[16]byte, msg []byte) {
	p.x = [16]byte{}
	for len(msg) > 16 {
		xor16(&p.x, msg[:16])
		p.b.Encrypt(p.x[:], p.x[:])
		msg = msg[16:]
	}
	if len(msg) == 16 {
		xor16(&p.x, msg)
		xor16(&p.x, p.k1[:])
	} else {
		var last [16]byte
		copy(last[:], msg)
		last[len(msg)] = 0x80
		xor16(&p.x, last[:])
		xor16(&p.x, p.k2[:])
	}
	p.b.Encrypt(p.x[:], p.x[:])
	*out = p.x
}

func xor16(x *[16]byte, b []byte) {
	a0 := binary.LittleEndian.Uint64(x[:8]) ^ binary.LittleEndian.Uint64(b[:8])
	a1 := binary.LittleEndian.Uint64(x[8:]) ^ binary.LittleEndian.Uint64(b[8:16])
	binary.LittleEndian.PutUint64(x[:8], a0)
	binary.LittleEndian.PutUint64(x[8:], a1)
}

// block computes the PRF of one fixed 16-byte block (domain-separated from
// sum by the caller's choice of block contents and by using k1 only for
// full blocks, exactly as CMAC of a 16-byte message).
func (p *prf) block(in [16]byte) [16]byte {
	xor16(&in, p.k1[:])
	p.x = in
	p.b.Encrypt(p.x[:], p.x[:])
	return p.x
}

// bits hands out keyed pseudo-random bits from a CMAC output; when they run
// out it extends the stream by hashing a counter block, so generators never
// need more than one PRF call per 128 bits.
type bits struct {
	p      *prf
	h      [16]byte
	lo, hi uint64
	n      uint // bits left in lo
	usedHi bool
	ctr    byte
}

func (p *prf) stream(v []byte) bits {
	b := bits{p: p}
	p.sum(&b.h, v)
	b.load()
	return b
}

func (b *bits) load() {
	b.lo = binary.LittleEndian.Uint64(b.h[:8])
	b.hi = binary.LittleEndian.Uint64(b.h[8:])
	b.n = 64
	b.usedHi = false
}

// take returns an integer in [0, n), consuming log2(n)+8 bits so the modulo
// bias stays below 1/256.
func (b *bits) take(n int) int {
	if n <= 1 {
		return 0
	}
	return int(b.u(uint(bitLen(uint64(n))+8)) % uint64(n))
}

// u returns k (at most 56) fresh bits.
func (b *bits) u(k uint) uint64 {
	if b.n < k {
		if !b.usedHi {
			b.lo, b.n, b.usedHi = b.hi, 64, true
		} else {
			in := b.h
			in[0] ^= 0xA5
			b.ctr++
			in[15] ^= b.ctr
			b.h = b.p.block(in)
			b.load()
		}
	}
	v := b.lo & (1<<k - 1)
	b.lo >>= k
	b.n -= k
	return v
}

func bitLen(x uint64) int {
	n := 0
	for x != 0 {
		n++
		x >>= 1
	}
	return n
}
