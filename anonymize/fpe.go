package anonymize

import (
	"encoding/binary"
	mbits "math/bits"
)

// feistelRounds follows FF3-1's eight rounds. Each round is one AES block.
const feistelRounds = 8

// feistel is a keyed permutation of [0, ma*mb): an FF1-style unbalanced
// Feistel network whose round function is the PRF. It is what makes phone
// and IPv4 masking unique: distinct inputs always give distinct outputs.
func (p *prf) feistel(x, ma, mb, tweak uint64) uint64 {
	a, b := x/mb, x%mb
	var in [16]byte
	binary.LittleEndian.PutUint64(in[:8], tweak)
	for i := 0; i < feistelRounds; i++ {
		m := ma
		if i%2 == 1 {
			m = mb
		}
		in[7] = byte(i) // the tweak's top byte is the round number
		binary.LittleEndian.PutUint64(in[8:], b)
		out := p.block(in)
		// Lemire's multiply-shift instead of a 64-bit division: maps the
		// PRF's 64 bits onto [0, m) with bias below m/2^64.
		f, _ := mbits.Mul64(binary.LittleEndian.Uint64(out[:8]), m)
		c := a + f
		if c >= m {
			c -= m
		}
		a, b = b, c
	}
	return a*mb + b
}

var pow10 = func() [19]uint64 {
	var t [19]uint64
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 10
	}
	return t
}()

// permuteDigits is a keyed permutation of the n-digit decimal strings
// (1 <= n <= 18), returned as a number below 10^n.
func (p *prf) permuteDigits(x uint64, n int, tweak uint64) uint64 {
	tweak = tweak&^(0xff<<56) ^ uint64(n)<<48
	if n == 1 {
		// Cycle-walk a two-digit permutation down to one digit: still a
		// permutation of 0..9.
		y := p.feistel(x, 10, 10, tweak)
		for y >= 10 {
			y = p.feistel(y, 10, 10, tweak)
		}
		return y
	}
	u := n / 2
	return p.feistel(x, pow10[u], pow10[n-u], tweak)
}

// feistelInv inverts feistel: the rounds run backwards, each subtracting
// the round function of the half it left untouched.
func (p *prf) feistelInv(y, ma, mb, tweak uint64) uint64 {
	a, b := y/mb, y%mb
	var in [16]byte
	binary.LittleEndian.PutUint64(in[:8], tweak)
	for i := feistelRounds - 1; i >= 0; i-- {
		m := ma
		if i%2 == 1 {
			m = mb
		}
		// After round i the pair is (b_in, c) with c = a_in + F(b_in) mod m.
		in[7] = byte(i)
		binary.LittleEndian.PutUint64(in[8:], a)
		out := p.block(in)
		f, _ := mbits.Mul64(binary.LittleEndian.Uint64(out[:8]), m)
		prev := b + m - f
		if prev >= m {
			prev -= m
		}
		a, b = prev, a
	}
	return a*mb + b
}

func (p *prf) unpermuteDigits(y uint64, n int, tweak uint64) uint64 {
	tweak = tweak&^(0xff<<56) ^ uint64(n)<<48
	if n == 1 {
		x := p.feistelInv(y, 10, 10, tweak)
		for x >= 10 {
			x = p.feistelInv(x, 10, 10, tweak)
		}
		return x
	}
	u := n / 2
	return p.feistelInv(y, pow10[u], pow10[n-u], tweak)
}

// derangeDigits is a keyed permutation of the n-digit strings with no fixed
// point: P⁻¹(P(x) + 1 mod 10^n). A keyed permutation P alone maps about one
// input in 10^n to itself (for a 3-digit extension, one in a thousand), and
// no rule of the form "if P(x) == x use something else" can stay a
// permutation: the other values already use every other output. Conjugating
// the shift y → y+1 by P is a permutation (a composition of three) and has
// no fixed point (P(x)+1 ≠ P(x)); it is one cycle walked a single step
// further from P(x), in P's coordinates. It costs one inverse permutation.
func (p *prf) derangeDigits(x uint64, n int, tweak uint64) uint64 {
	y := p.permuteDigits(x, n, tweak) + 1
	if y == pow10[n] {
		y = 0
	}
	return p.unpermuteDigits(y, n, tweak)
}

// derange32 is derangeDigits for 32-bit values (IPv4 addresses).
func (p *prf) derange32(x, tweak uint64) uint64 {
	y := (p.feistel(x, 1<<16, 1<<16, tweak) + 1) & (1<<32 - 1)
	return p.feistelInv(y, 1<<16, 1<<16, tweak)
}

// derangeBlock is the same construction on AES: D(E(x) + 1 mod 2^128), a
// permutation of 16-byte blocks with no fixed point (uuids, IPv6).
func (p *prf) derangeBlock(x [16]byte) [16]byte {
	p.b.Encrypt(x[:], x[:])
	for i := 15; i >= 0; i-- {
		x[i]++
		if x[i] != 0 {
			break
		}
	}
	p.b.Decrypt(x[:], x[:])
	return x
}
