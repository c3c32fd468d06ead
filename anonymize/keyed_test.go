package anonymize

import (
	"encoding/hex"
	"testing"
)

// The PRF is AES-CMAC exactly: RFC 4493's test vectors.
func TestCMACVectors(t *testing.T) {
	key, _ := hex.DecodeString("2b7e151628aed2a6abf7158809cf4f3c")
	msg, _ := hex.DecodeString("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	p := newCMAC(key)
	for n, want := range map[int]string{0: "bb1d6929e95937287fa37d129b756746", 16: "070a16b46b4d4144f79bdd9dd04a287c",
		40: "dfa66747de9ae63030ca32611497c827", 64: "51f0bebf7e3b9d92fc49741779363cfe"} {
		var out [16]byte
		p.sum(&out, msg[:n])
		if got := hex.EncodeToString(out[:]); got != want {
			t.Errorf("CMAC of %d bytes: %s, want %s", n, got, want)
		}
	}
}

// permuteDigits is a permutation of the n-digit strings: checked
// exhaustively for small n, with two tweaks.
func TestPermuteDigitsIsAPermutation(t *testing.T) {
	p := newPRF(testKey, "phone")
	for n := 1; n <= 5; n++ {
		for _, tweak := range []uint64{1, 0xdeadbeef} {
			size := pow10[n]
			seen := make([]bool, size)
			moved := 0
			for x := uint64(0); x < size; x++ {
				y := p.permuteDigits(x, n, tweak)
				if y >= size || seen[y] {
					t.Fatalf("n=%d: %d maps to %d (out of range or taken)", n, x, y)
				}
				seen[y] = true
				if y != x {
					moved++
				}
			}
			if moved < int(size)/2 {
				t.Fatalf("n=%d: only %d of %d values moved", n, moved, size)
			}
		}
	}
	// The IPv4 network: a permutation of 32-bit values (spot check 2^20).
	seen := map[uint64]bool{}
	for x := uint64(0); x < 1<<20; x++ {
		y := p.feistel(x*4093, 1<<16, 1<<16, 4)
		if y >= 1<<32 || seen[y] {
			t.Fatalf("ipv4 feistel collides at %d", x)
		}
		seen[y] = true
	}
}
