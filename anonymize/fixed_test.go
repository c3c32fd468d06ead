package anonymize

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// trialKeys is how many keys the fixed-point and false-alarm tests try
// (PGTWIN_MASK_KEYS; 200 by default).
func trialKeys(t testing.TB) [][]byte {
	n := 200
	if s := os.Getenv("PGTWIN_MASK_KEYS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("PGTWIN_MASK_KEYS=%q: want a positive count", s)
		}
	}
	keys := make([][]byte, n)
	for i := range keys {
		k := sha256.Sum256([]byte(fmt.Sprintf("trial key %d", i)))
		keys[i] = k[:]
	}
	return keys
}

type inputCase struct {
	rule   Rule
	ct     ColumnType
	inputs []string
	// ownOutputs adds the transformer's outputs under another key to the
	// inputs: masked values are what a re-masked twin or seeded data hold.
	ownOutputs bool
}

func phoneInputs(r *rand.Rand, n int) []string {
	shapes := []string{"+1 (###) ###-####", "+44 20 #### ####", "0044 20 #### ####", "020 #### ####", "+49 30 ########",
		"(###) ###-####", "###.###.####", "+33 # ## ## ## ##", "06 ## ## ## ##", "+31 6 ########", "+1 ### ### #### ext ###",
		"###-####", "+############", "#", "##", "+1", "+7 ### ###-##-##", "+55 11 9####-####", "+61 4## ### ###", "+91 ##### #####"}
	var out []string
	for i := 0; i < n; i++ {
		s := []byte(shapes[i%len(shapes)])
		for j, c := range s {
			if c == '#' {
				s[j] = byte('0' + r.IntN(10))
			}
		}
		out = append(out, string(s))
	}
	return out
}

func fixedPointCases() []inputCase {
	r := rand.New(rand.NewPCG(1, 2))
	var fulls, emails, uuids, ips, ip6, nets, days, hexes, digits []string
	for i := 0; i < 200; i++ {
		f, l := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
		fulls = append(fulls, f+" "+l)
		emails = append(emails, strings.ToLower(f)+"."+strings.ToLower(l)+"@gmail.com")
		uuids = append(uuids, fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Int64N(1<<48)))
		ips = append(ips, fmt.Sprintf("%d.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256)))
		ip6 = append(ip6, fmt.Sprintf("2001:db8:%x::%x", r.IntN(1<<16), r.IntN(1<<16)))
		nets = append(nets, fmt.Sprintf("%d.0.0.0/8", r.IntN(256)), fmt.Sprintf("%d.%d.0.0/16", r.IntN(256), r.IntN(256)))
		hexes = append(hexes, fmt.Sprintf("%08x", r.Uint32()))
		digits = append(digits, strconv.FormatInt(r.Int64N(1e16), 10))
	}
	for d := 0; d < 366; d++ {
		days = append(days, fmt.Sprintf("2024-%02d-%02d", 1+d/31%12, 1+d%28))
	}
	upper := func(in []string) []string {
		var out []string
		for _, s := range in {
			out = append(out, strings.ToUpper(s), strings.ToLower(s))
		}
		return out
	}
	text := ColumnType{Base: "text"}
	return []inputCase{
		{rule("email"), text, emails, true},
		{rule("email", "unique", false), text, emails, true},
		{rule("email", "domain", "corp.example"), text, emails, true},
		{rule("email"), ColumnType{Base: "varchar", Length: 24}, emails, true},
		{rule("name"), text, fulls, true},
		{rule("name", "part", "first"), text, append(firstNames, upper(firstNames[:100])...), true},
		{rule("name", "part", "last"), text, append(lastNames, upper(lastNames)...), true},
		{rule("name", "part", "last", "unique", true), text, lastNames, true},
		{rule("name", "part", "first"), ColumnType{Base: "varchar", Length: 3}, []string{"Bob", "Ann", "Li", "Al", "Eva", "Jo"}, true},
		{rule("phone"), text, phoneInputs(r, 400), true},
		{rule("phone", "keep_prefix", 1), text, phoneInputs(r, 400), true},
		{rule("phone", "keep_prefix", 2), text, phoneInputs(r, 400), true},
		{rule("address"), text, []string{"221B Baker Street", "1 Main St", "742 Evergreen Terrace"}, true},
		{rule("address", "part", "city"), text, cities, true},
		{rule("address", "part", "state"), text, states, true},
		{rule("address", "part", "postcode"), text, []string{"1", "A", "z", "12345", "SW1A 1AA", "75008", "K1A-0B1", "1012 AB", "-", ""}, true},
		{rule("address", "part", "full"), text, []string{"1 Main St, Springfield 12345"}, true},
		{rule("address", "part", "city", "unique", true), text, cities, true},
		{rule("ip"), ColumnType{Base: "inet"}, append(append(ips, ip6...), "0.0.0.0", "255.255.255.255", "10.1.2.3/24"), true},
		{rule("ip"), ColumnType{Base: "cidr"}, append(nets, "10.0.0.0/1", "2001:db8::/32"), true},
		{rule("date"), ColumnType{Base: "date"}, days, true},
		{rule("date", "range_days", 1), ColumnType{Base: "timestamptz"}, []string{"2024-03-05 12:34:56+00", "0001-01-01 00:00:00+00"}, true},
		{rule("date", "keep_year", true), ColumnType{Base: "date"}, days, true},
		{rule("number"), ColumnType{Base: "int4"}, []string{"0", "1", "-1", "2", "5", "-7", "100", "2147483647", "-2147483648"}, true},
		{rule("number"), ColumnType{Base: "int2"}, []string{"32767", "-32768", "3"}, true},
		{rule("number"), ColumnType{Base: "numeric", Precision: 1, Scale: 0}, []string{"9", "-9", "0", "1"}, true},
		{rule("number"), ColumnType{Base: "numeric", Precision: 6, Scale: 2}, []string{"9999.99", "0.00", "0.01", "1.50", "-9999.99"}, true},
		{rule("number"), ColumnType{Base: "numeric", Scale: -1}, []string{"0", "1.5", "0.001", "123.4500"}, true},
		{rule("number", "absolute", 0.1), ColumnType{Base: "numeric", Scale: -1}, []string{"3", "40", "-2"}, true},
		{rule("number"), ColumnType{Base: "float8"}, []string{"0", "1", "3.5e10", "-0.25", "1e-300"}, true},
		{rule("number"), ColumnType{Base: "float4"}, []string{"0", "1", "2.5"}, true},
		{rule("hash", "length", 8), text, hexes, true},
		{rule("hash"), text, emails, true},
		{rule("uuid"), ColumnType{Base: "uuid"}, uuids, true},
		{rule("uuid"), text, []string{"customer-42", "x"}, true},
		{rule("partial"), text, digits, false},
		{rule("partial", "keep_first", 1, "keep_last", 1), text, []string{"ab", "abc", "1234"}, false},
		{rule("name", "part", "last"), ColumnType{Base: "_text"}, []string{"{Smith,Jones,NULL,\"Van Dyke\"}"}, true},
	}
}

// No masked value equals its input, for every transformer, across many
// keys and inputs, including inputs taken from the transformer's own lists
// (real names are in the fake-name list) and its own outputs.
func TestNoFixedPoints(t *testing.T) {
	keys := trialKeys(t)
	covered := map[string]bool{}
	for _, tc := range fixedPointCases() {
		covered[tc.rule.Transform] = true
		name := tc.rule.Identity() + "/" + tc.ct.Base
		inputs := tc.inputs
		if tc.ownOutputs {
			other := mustT(t, tc.rule, testKey, tc.ct)
			for _, in := range tc.inputs[:min(len(tc.inputs), 100)] {
				if out := apply(t, other, in); out != "<NULL>" {
					inputs = append(inputs, out)
				}
			}
		}
		failures := 0
		for k, key := range keys {
			tr := mustT(t, tc.rule, key, tc.ct)
			for _, in := range strided(k, inputs) {
				out := apply(t, tr, in)
				fixed := sameValue([]byte(out), []byte(in))
				if strings.HasPrefix(tc.ct.Base, "_") {
					fixed = sameElement(out, in)
				}
				if fixed && !nothingToMask(tc.rule, in) {
					if failures++; failures <= 5 {
						t.Errorf("%s: %q masks to itself (%q)", name, in, out)
					}
				}
				if again := apply(t, tr, in); again != out {
					t.Fatalf("%s: %q masked to %q, then %q: re-drawing is not deterministic", name, in, out, again)
				}
			}
		}
	}
	// json masks leaves with the transformers above: every masked leaf
	// differs.
	jr := rule("json", "paths", map[string]any{"who.name": map[string]any{"transform": "name", "part": "last"}, "ip": map[string]any{"transform": "ip"}})
	covered["json"] = true
	for _, key := range keys[:min(len(keys), 50)] {
		tr := mustT(t, jr, key, ColumnType{Base: "jsonb"})
		for _, l := range lastNames {
			in := fmt.Sprintf(`{"who": {"name": %q}, "ip": "10.0.0.1"}`, l)
			var doc struct {
				Who struct{ Name string }
				IP  string
			}
			if err := json.Unmarshal([]byte(apply(t, tr, in)), &doc); err != nil {
				t.Fatal(err)
			}
			if strings.EqualFold(doc.Who.Name, l) || doc.IP == "10.0.0.1" {
				t.Fatalf("json: a leaf masked to itself: %+v from %s", doc, in)
			}
		}
	}
	// The rest have no keyed output to re-draw: their output does not
	// depend on the value (null, constant), or is the value by request
	// (keep), or is the user's own pattern (regex).
	exempt := map[string]string{"keep": "identity by request", "null": "input-independent", "constant": "input-independent", "regex": "user-defined replacement"}
	for _, n := range TransformerNames() {
		if !covered[n] && exempt[n] == "" {
			t.Errorf("transformer %s is neither tested for fixed points nor exempt", n)
		}
	}
}

// nothingToMask: values a transformer passes through because they hold
// nothing to hide: a phone with no digit, infinity, an already-masked
// partial value.
func nothingToMask(r Rule, in string) bool {
	switch r.Transform {
	case "phone":
		return countDigits([]byte(in)) == 0
	case "date":
		return in == "infinity" || in == "-infinity"
	case "partial":
		return strings.Trim(in, "*") == ""
	}
	return false
}

func sameElement(out, in string) bool {
	o := arrayElements([]byte(out))
	for i, e := range arrayElements([]byte(in)) {
		if i < len(o) && string(e) != "NULL" && sameValue(o[i], e) {
			return true
		}
	}
	return false
}

// The derangements are permutations without fixed points: exhaustive for
// short digit strings, the inverse Feistel checked against the forward one.
func TestDerangementsArePermutations(t *testing.T) {
	p := newPRF(testKey, "phone")
	for n := 1; n <= 4; n++ {
		for _, tweak := range []uint64{1, 0xdeadbeef} {
			seen := make([]bool, pow10[n])
			for x := uint64(0); x < pow10[n]; x++ {
				if back := p.unpermuteDigits(p.permuteDigits(x, n, tweak), n, tweak); back != x {
					t.Fatalf("n=%d: inverse of permutation of %d is %d", n, x, back)
				}
				y := p.derangeDigits(x, n, tweak)
				if y >= pow10[n] || seen[y] || y == x {
					t.Fatalf("n=%d: %d maps to %d (out of range, taken or fixed)", n, x, y)
				}
				seen[y] = true
			}
		}
	}
	seen := map[uint64]bool{}
	for x := uint64(0); x < 1<<16; x++ {
		y := p.derange32(x*65521, 4)
		if y == x*65521 || seen[y] || y >= 1<<32 {
			t.Fatalf("derange32 at %d: %d", x, y)
		}
		seen[y] = true
	}
}

// strided: the first keys get every input, later ones a tenth of them
// (a different tenth for each key), so each input still meets ~20 keys at
// the default 200 and the test stays quick.
func strided(k int, in []string) []string {
	if k < 4 || len(in) <= 40 {
		return in
	}
	var out []string
	for i := k % 10; i < len(in); i += 10 {
		out = append(out, in[i])
	}
	return out
}
