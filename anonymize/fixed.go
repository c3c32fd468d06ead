package anonymize

import "bytes"

// A masked value must never equal the value it came from: a transformer
// that draws from a list (the fake-name list holds real names) or a small
// domain (postcodes, a day of the same year) would otherwise copy a real
// value into the twin now and then, and it would sit there unmasked.
//
// Permutations (phone, ip, uuid) are built without fixed points (see
// derangeDigits). The others draw again, deterministically: attempt k > 0
// hashes the value's PRF output with k, so the same input always takes the
// same number of attempts and gets the same output. Unique modes stay
// unique in the same sense as before: every attempt draws a fresh keyed
// tag, so two inputs collide only as likely as two first attempts do.

// maxAttempts bounds the re-draws. A draw equals its input with probability
// at most 1/len(list) (1/26 for a one-letter postcode), so 32 failures in a
// row do not happen; the bound only keeps a degenerate input from looping.
const maxAttempts = 32

// redrawer is a transformer that can draw its output again.
type redrawer interface {
	// appendAttempt is one draw; attempt 0 is the output Append would give
	// if it did not equal the input.
	appendAttempt(dst, v []byte, attempt int) ([]byte, bool, error)
}

// sameValue says whether a masked value gives the input away: equal bytes,
// or equal but for case (names, emails and cities compare so).
func sameValue(out, in []byte) bool {
	return bytes.EqualFold(bytes.TrimSpace(out), bytes.TrimSpace(in))
}

// redraw returns the first attempt whose output differs from v.
func redraw(t redrawer, dst, v []byte) ([]byte, bool, error) {
	start := len(dst)
	var out []byte
	for a := 0; a < maxAttempts; a++ {
		var null bool
		var err error
		out, null, err = t.appendAttempt(dst[:start], v, a)
		if err != nil || null || !sameValue(out[start:], v) {
			return out, null, err
		}
		dst = out
	}
	return out, false, nil
}

// streamAttempt is the keyed bit stream of draw attempt: stream(v) for the
// first, then a counter mixed into v's PRF output.
func (p *prf) streamAttempt(v []byte, attempt int) bits {
	b := p.stream(v)
	if attempt == 0 {
		return b
	}
	in := b.h
	in[0] ^= 0x5C
	in[1] ^= byte(attempt)
	in[2] ^= byte(attempt >> 8)
	b.h = p.block(in)
	b.load()
	return b
}
