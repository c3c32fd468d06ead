package anonymize

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// `mask check` must not raise false alarms on masked output: a masked value
// of one kind must not look like PII of another (a masked phone once passed
// for a Luhn-valid card number). Every transformer, many keys, inputs of
// the kind it is meant for.
func TestMaskedOutputRaisesNoLeakAlarm(t *testing.T) {
	keys := trialKeys(t)
	r := rand.New(rand.NewPCG(3, 4))
	var cards, amounts, ids []string
	for i := 0; i < 50; i++ {
		cards = append(cards, fmt.Sprintf("4%015d", r.Int64N(1e15)))
		amounts = append(amounts, fmt.Sprintf("%d.%02d", r.IntN(100000), r.IntN(100)))
		ids = append(ids, fmt.Sprintf("%d", r.Int64N(1e12)))
	}
	text := ColumnType{Base: "text"}
	cases := []inputCase{
		{rule: rule("phone"), ct: text, inputs: phoneInputs(r, 200)},
		{rule: rule("phone", "keep_prefix", 2), ct: text, inputs: phoneInputs(r, 200)},
		{rule: rule("email"), ct: text, inputs: []string{"ann.lee@gmail.com", "x@corp.io", "o'brien+tag@mail.co.uk"}},
		{rule: rule("email", "unique", false), ct: text, inputs: []string{"ann.lee@gmail.com"}},
		{rule: rule("name"), ct: text, inputs: []string{"Owen Harris", "Braund, Mr. Owen Harris"}},
		{rule: rule("address"), ct: text, inputs: []string{"221B Baker Street"}},
		{rule: rule("address", "part", "postcode"), ct: text, inputs: []string{"SW1A 1AA", "75008", "1012 AB", "12345-6789"}},
		{rule: rule("address", "part", "full"), ct: text, inputs: []string{"1 Main St, Springfield 12345"}},
		{rule: rule("ip"), ct: ColumnType{Base: "inet"}, inputs: []string{"10.1.2.3", "2001:db8::1", "192.168.0.1/24"}},
		{rule: rule("date"), ct: ColumnType{Base: "date"}, inputs: []string{"1984-02-29", "2001-12-31"}},
		{rule: rule("date"), ct: ColumnType{Base: "timestamptz"}, inputs: []string{"2024-03-05 12:34:56.789+00"}},
		{rule: rule("number"), ct: ColumnType{Base: "numeric", Scale: -1}, inputs: append(amounts, ids...)},
		{rule: rule("number"), ct: ColumnType{Base: "int8"}, inputs: ids},
		{rule: rule("hash"), ct: text, inputs: cards},
		{rule: rule("hash", "length", 13), ct: text, inputs: cards},
		{rule: rule("hash", "length", 16), ct: text, inputs: cards},
		{rule: rule("hash", "length", 19), ct: text, inputs: cards},
		{rule: rule("uuid"), ct: ColumnType{Base: "uuid"}, inputs: []string{"6ba7b810-9dad-11d1-80b4-00c04fd430c8"}},
		{rule: rule("uuid"), ct: text, inputs: cards},
		{rule: rule("partial"), ct: text, inputs: cards},
	}
	// And every transformer with the inputs of the fixed-point test.
	cases = append(cases, fixedPointCases()...)
	check := NewChecker(LeakDetectors(), nil)
	for _, tc := range cases {
		alarms := 0
		for k, key := range keys {
			tr := mustT(t, tc.rule, key, tc.ct)
			for _, in := range strided(k, tc.inputs) {
				out := apply(t, tr, in)
				if f := check.Check("s", "t", "c", []byte(out)); f != nil {
					if alarms++; alarms <= 5 {
						t.Errorf("%s/%s: masked %q gives %q, which mask check reports as %s", tc.rule.Identity(), tc.ct.Base, in, out, f.Detector)
					}
				}
			}
		}
	}
}
