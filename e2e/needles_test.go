package e2e

import (
	"fmt"
	"slices"
	"testing"

	"github.com/pgtwin/pgtwin/anonymize"
)

// TestFindNeedles: the leak scanner finds raw values however they are
// glued into a file, and does not report the tail of a masked email that
// happens to spell a raw one (CI saw "…7dfj7bulk2@example.org"-like tags).
func TestFindNeedles(t *testing.T) {
	needles := map[string]bool{"bulk2@example.org": true, "zeb.q@gmail.com": true, "smith23@example.com": true}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"\x25bulk2@example.org\x00", []string{"bulk2@example.org"}},    // short varlena header
		{"gbulk2@example.org", []string{"bulk2@example.org"}},           // a header byte that is a letter
		{"phonezeb.q@gmail.com", []string{"zeb.q@gmail.com"}},           // jsonb: the key before the value
		{"x,bulk2@example.org,y", []string{"bulk2@example.org"}},        // COPY or log text
		{"example.orgbulk2@example.org", []string{"bulk2@example.org"}}, // glued to a masked value's end
		{"aryanna.watkins.7dfj7bulk2@example.org", nil},                 // a masked tag's tail
		{"phonearyanna.watkins.7dfj7bulk2@example.org", nil},            // same, after a jsonb key
		{"a.7dfj7bulk2@example.org", nil},                               // the compact form
		{"jane.smith23@example.com", nil},                               // the non-unique form
		{"jane.smith23@example.com smith23@example.com", []string{"smith23@example.com"}},
	} {
		if got := findNeedles([]byte(tc.in), needles, nil); !slices.Equal(got, tc.want) {
			t.Errorf("findNeedles(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}

	// Every masked email is left alone, and every raw one is found, with
	// the real transformer (its output shape is what insideMasked knows).
	tr, err := anonymize.NewTransformer(anonymize.Rule{Transform: "email"}, []byte("0123456789abcdef0123456789abcdef"), anonymize.ColumnType{})
	if err != nil {
		t.Fatal(err)
	}
	raw := map[string]bool{}
	var buf []byte
	for i := range 2000 {
		v := fmt.Sprintf("bulk%d@example.org", i)
		raw[v] = true
		m, _, err := tr.Append(nil, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		if !maskedLocal.Match(m[:len(m)-len("example.org")]) {
			t.Fatalf("masked email %q is not of the shape the scanner knows", m)
		}
		buf = append(append(buf, m...), 0)
	}
	if got := findNeedles(buf, raw, nil); len(got) != 0 {
		t.Errorf("masked emails reported as raw: %q", got)
	}
	if got := findNeedles(append(buf, "\x25bulk7@example.org"...), raw, nil); !slices.Equal(got, []string{"bulk7@example.org"}) {
		t.Errorf("a raw email among masked ones: found %q", got)
	}
}
