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
