package anonymize

import (
	"bytes"
	"testing"
)

func TestCopyFieldEscapes(t *testing.T) {
	cases := []struct{ raw, enc string }{
		{"plain", "plain"},
		{"", ""},
		{"tab\there", `tab\there`},
		{"new\nline\r\n", `new\nline\r\n`},
		{`back\slash`, `back\\slash`},
		{"\b\f\v", `\b\f\v`},
		{"\x01ctl", "\x01ctl"},                 // other control chars go out raw
		{"ünï©ødé ✓", "ünï©ødé ✓"},             // bytes >= 0x80 untouched
		{`{"a\\"b",NULL}`, `{"a\\\\"b",NULL}`}, // array text: only COPY's escaping
	}
	for _, c := range cases {
		if got := EncodeCopyField(nil, []byte(c.raw)); string(got) != c.enc {
			t.Errorf("encode %q: got %q want %q", c.raw, got, c.enc)
		}
		if got := DecodeCopyField(nil, []byte(c.enc)); string(got) != c.raw {
			t.Errorf("decode %q: got %q want %q", c.enc, got, c.raw)
		}
	}
	// Escapes PostgreSQL accepts on input but never writes.
	for enc, raw := range map[string]string{`\101\x42\x4`: "AB\x04", `\q\.`: "q.", `\7`: "\x07", `\xZ`: "xZ"} {
		if got := DecodeCopyField(nil, []byte(enc)); string(got) != raw {
			t.Errorf("decode %q: got %q want %q", enc, got, raw)
		}
	}
}

func TestSplitCopyLineBackslashTab(t *testing.T) {
	// A backslash followed by a raw tab is a data tab, not a delimiter.
	got := SplitCopyLine([]byte("a\\\tb\t\\N\t\n"))
	if len(got) != 3 || string(got[0]) != "a\tb" || got[1] != nil || got[2] == nil || len(got[2]) != 0 {
		t.Fatalf("got %q", got)
	}
}

// roundTrip checks the codec properties the fuzzer drives: any values encode
// to a line that splits back into the same values, and a pass-through masker
// (no rules) copies the line byte for byte.
func roundTrip(t *testing.T, data []byte) {
	vals := bytes.Split(data, []byte{0xff})
	for i, v := range vals {
		if bytes.Equal(v, []byte{0xfe}) {
			vals[i] = nil // NULL
		}
	}
	line := AppendCopyLine(nil, vals)
	back := SplitCopyLine(line)
	if len(back) != len(vals) {
		t.Fatalf("%d values became %d", len(vals), len(back))
	}
	for i := range vals {
		if (vals[i] == nil) != (back[i] == nil) || !bytes.Equal(vals[i], back[i]) {
			t.Fatalf("value %d: %q became %q", i, vals[i], back[i])
		}
	}
	cols := make([]Column, len(vals))
	keep := make([]ColumnPlan, len(vals))
	mask := make([]ColumnPlan, len(vals))
	for i := range cols {
		cols[i] = Column{Name: "c", Base: "text"}
		keep[i] = ColumnPlan{Action: ActionKeep}
		mask[i] = ColumnPlan{Action: ActionMask, Rule: &Rule{Transform: "keep"}}
	}
	tab := &Table{Schema: "s", Name: "t", Columns: cols}
	for _, cps := range [][]ColumnPlan{keep, mask} {
		p := &Plan{Tables: []*TablePlan{{Schema: "s", Name: "t", Columns: cps, table: tab}}}
		m, err := p.Table("s", "t", testKey)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.MaskCopyLine(nil, line)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, line) {
			t.Fatalf("identity masking changed %q to %q", line, out)
		}
	}
	// Arbitrary bytes as a line: whatever it splits into re-encodes to a
	// line that splits the same way.
	vals2 := SplitCopyLine(data)
	again := SplitCopyLine(AppendCopyLine(nil, vals2))
	if len(again) != len(vals2) {
		t.Fatalf("re-encoded line has %d fields, want %d", len(again), len(vals2))
	}
	for i := range vals2 {
		if (vals2[i] == nil) != (again[i] == nil) || !bytes.Equal(vals2[i], again[i]) {
			t.Fatalf("field %d: %q became %q", i, vals2[i], again[i])
		}
	}
}

func FuzzCopyCodec(f *testing.F) {
	for _, s := range []string{"", "a", "a\xffb", "\t\n\\", "\xfe", "x\xff\xfe\xff", `\N`, "ünï\x00\x01\x7f", `\\\t\x41\101`, "a\\\tb"} {
		f.Add([]byte(s))
	}
	f.Fuzz(roundTrip)
}

// Any value through any transformer: an error or an output, never a panic
// (a panic would stop a sync on one odd value).
func FuzzTransformers(f *testing.F) {
	for _, s := range []string{"", "a@b.c", "+1 (555) 010-4477", "2024-02-29 10:00:00+00", "1e400", "-0.5", "{a,\"b\"}", `{"x":{"y":[1,"z"]}}`, "::1/128", "\xff\xfe", "1e999999999"} {
		f.Add([]byte(s))
	}
	var trs []Transformer
	for _, c := range transformerCases {
		trs = append(trs, mustT(f, c.rule, testKey, c.ct))
	}
	trs = append(trs, mustT(f, rule("email"), testKey, ColumnType{Base: "_varchar", Length: 12}),
		mustT(f, rule("number"), testKey, ColumnType{Base: "int8"}),
		mustT(f, rule("date"), testKey, ColumnType{Base: "_date"}))
	f.Fuzz(func(t *testing.T, v []byte) {
		for _, tr := range trs {
			out, _, err := tr.Append(nil, v)
			if err == nil && tr.Unique() && len(v) > 0 && out == nil {
				t.Fatalf("unique transformer gave no output")
			}
		}
	})
}
