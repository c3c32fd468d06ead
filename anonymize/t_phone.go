package anonymize

// phoneT replaces the digits of a value with a keyed permutation of them and
// keeps every other character (+, spaces, dashes, parentheses, "ext.") where
// it was. The output has the input's shape, and since the shape is kept and
// the digits are permuted given the shape, distinct inputs stay distinct.
type phoneT struct {
	p    *prf
	keep int // leading digits kept as they are (country code)
}

func (t *phoneT) Unique() bool { return true }

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

func (t *phoneT) Append(dst, v []byte) ([]byte, bool, error) {
	var stack [32]byte
	digits := stack[:0]
	// The tweak binds the permutation to the shape and the kept prefix, so
	// "+1 555..." and "555..." do not share a permutation table.
	tweak := uint64(fnvOffset)
	for i, c := range v {
		if c >= '0' && c <= '9' {
			if len(digits) < t.keep {
				tweak = (tweak ^ uint64(c)) * fnvPrime
			}
			digits = append(digits, c-'0')
			continue
		}
		tweak = (tweak ^ uint64(c) ^ uint64(i)<<8) * fnvPrime
	}
	if len(digits) <= t.keep {
		return append(dst, v...), false, nil
	}
	rest := digits[t.keep:]
	for len(rest) > 0 {
		n := min(len(rest), 18)
		var x uint64
		for _, d := range rest[:n] {
			x = x*10 + uint64(d)
		}
		y := t.p.permuteDigits(x, n, tweak)
		for i := n - 1; i >= 0; i-- {
			rest[i] = byte(y % 10)
			y /= 10
		}
		// Chain later chunks on this chunk's input so long digit strings
		// stay a permutation as a whole.
		tweak = (tweak ^ x) * fnvPrime
		rest = rest[n:]
	}
	k := 0
	for _, c := range v {
		if c >= '0' && c <= '9' {
			c = '0' + digits[k]
			k++
		}
		dst = append(dst, c)
	}
	return dst, false, nil
}
