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
	keep := t.keep
	if n := countDigits(v); n == 0 {
		// Nothing to mask: "n/a", "" carry no number.
		return append(dst, v...), false, nil
	} else if n <= keep {
		// All digits would be kept, so the value would come out as it went
		// in: permute them all (the shape, hence digit count, is in the
		// tweak, so this cannot collide with a longer number).
		keep = 0
	}
	// The tweak binds the permutation to the shape and the kept prefix, so
	// "+1 555..." and "555..." do not share a permutation table.
	tweak := uint64(fnvOffset)
	for i, c := range v {
		if c >= '0' && c <= '9' {
			if len(digits) < keep {
				tweak = (tweak ^ uint64(c)) * fnvPrime
			}
			digits = append(digits, c-'0')
			continue
		}
		tweak = (tweak ^ uint64(c) ^ uint64(i)<<8) * fnvPrime
	}
	rest := digits[keep:]
	first := true
	for len(rest) > 0 {
		n := min(len(rest), 18)
		var x uint64
		for _, d := range rest[:n] {
			x = x*10 + uint64(d)
		}
		// The first chunk is deranged (never maps to itself), so the
		// output always differs from the input; later chunks only need to
		// be a permutation.
		var y uint64
		if first {
			y = t.p.derangeDigits(x, n, tweak)
		} else {
			y = t.p.permuteDigits(x, n, tweak)
		}
		first = false
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

func countDigits(v []byte) int {
	n := 0
	for _, c := range v {
		if c >= '0' && c <= '9' {
			n++
		}
	}
	return n
}
