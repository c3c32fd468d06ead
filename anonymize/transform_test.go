package anonymize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/mail"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

var testKey = bytes.Repeat([]byte{7}, KeySize)

func mustT(t testing.TB, r Rule, key []byte, ct ColumnType) Transformer {
	t.Helper()
	tr, err := NewTransformer(r, key, ct)
	if err != nil {
		t.Fatalf("build %s: %v", r.Identity(), err)
	}
	return tr
}

func apply(t testing.TB, tr Transformer, v string) string {
	t.Helper()
	out, null, err := tr.Append(nil, []byte(v))
	if err != nil {
		t.Fatalf("transform: %v", err)
	}
	if null {
		return "<NULL>"
	}
	return string(out)
}

func rule(tr string, kv ...any) Rule {
	p := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i].(string)] = kv[i+1]
	}
	return Rule{Transform: tr, Params: p}
}

// Every transformer with a typical input and a validity check of its output.
var transformerCases = []struct {
	rule  Rule
	ct    ColumnType
	in    string
	valid func(string) error
}{
	{rule("email"), ColumnType{Base: "text"}, "john.doe@acme.io", validEmail},
	{rule("email", "unique", false), ColumnType{Base: "text"}, "JOHN@acme.io", validEmail},
	{rule("email", "domain", "corp.example"), ColumnType{Base: "text"}, "x@y.z", validEmail},
	{rule("name"), ColumnType{Base: "text"}, "John Doe", nonEmpty},
	{rule("name", "part", "first"), ColumnType{Base: "text"}, "John", nonEmpty},
	{rule("name", "part", "last", "unique", true), ColumnType{Base: "text"}, "Doe", nonEmpty},
	{rule("phone"), ColumnType{Base: "text"}, "+1 (555) 010-4477", sameShape},
	{rule("phone", "keep_prefix", 2), ColumnType{Base: "text"}, "+44 20 7946 0958", sameShape},
	{rule("address"), ColumnType{Base: "text"}, "221B Baker Street", nonEmpty},
	{rule("address", "part", "city"), ColumnType{Base: "text"}, "London", nonEmpty},
	{rule("address", "part", "postcode"), ColumnType{Base: "text"}, "SW1A 1AA", sameShape},
	{rule("address", "part", "full"), ColumnType{Base: "text"}, "1 Main St, Springfield 12345", nonEmpty},
	{rule("ip"), ColumnType{Base: "inet"}, "192.168.10.20", validIP},
	{rule("ip"), ColumnType{Base: "inet"}, "10.1.2.3/24", validIP},
	{rule("ip"), ColumnType{Base: "inet"}, "2001:db8::1", validIP},
	{rule("ip"), ColumnType{Base: "cidr"}, "10.20.0.0/16", validCIDR},
	{rule("date"), ColumnType{Base: "date"}, "1984-02-29", validDate},
	{rule("date", "keep_year", true), ColumnType{Base: "date"}, "1984-12-31", sameYear("1984")},
	{rule("date", "range_days", 30), ColumnType{Base: "timestamptz"}, "2024-03-05 12:34:56.789+00", validTimestamp},
	{rule("number"), ColumnType{Base: "numeric", Precision: 6, Scale: 2}, "9500.50", fitsNumeric(6, 2)},
	{rule("number", "absolute", 1000), ColumnType{Base: "numeric", Precision: 5, Scale: 1}, "-5000.5", fitsNumeric(5, 1)},
	{rule("number", "relative", 0.5), ColumnType{Base: "int2"}, "20000", fitsInt(-32768, 32767)},
	{rule("number"), ColumnType{Base: "numeric", Scale: -1}, "123.4500", fitsScale(4)},
	{rule("number"), ColumnType{Base: "float8"}, "3.5e10", validFloat},
	{rule("partial", "keep_last", 4), ColumnType{Base: "text"}, "4111111111111111", func(s string) error {
		if s != "************1111" {
			return fmt.Errorf("got %q", s)
		}
		return nil
	}},
	{rule("hash"), ColumnType{Base: "text"}, "anything", hexLen(32)},
	{rule("hash", "length", 64), ColumnType{Base: "text"}, "anything", hexLen(64)},
	{rule("uuid"), ColumnType{Base: "uuid"}, "6ba7b810-9dad-11d1-80b4-00c04fd430c8", validUUID},
	{rule("uuid"), ColumnType{Base: "text"}, "customer-42", validUUID},
	{rule("null"), ColumnType{Base: "text"}, "x", func(s string) error {
		if s != "<NULL>" {
			return fmt.Errorf("got %q", s)
		}
		return nil
	}},
	{rule("null"), ColumnType{Base: "date", NotNull: true}, "2000-01-01", validDate},
	{rule("constant", "value", "redacted"), ColumnType{Base: "text"}, "secret", func(s string) error {
		if s != "redacted" {
			return fmt.Errorf("got %q", s)
		}
		return nil
	}},
	{rule("regex", "pattern", `\d`, "replace", "#"), ColumnType{Base: "text"}, "call 555-0101", func(s string) error {
		if s != "call ###-####" {
			return fmt.Errorf("got %q", s)
		}
		return nil
	}},
	{rule("json", "paths", map[string]any{
		"email":          map[string]any{"transform": "email"},
		"contact.phones": map[string]any{"transform": "phone"},
		"addresses.city": map[string]any{"transform": "address", "part": "city"},
		"age":            map[string]any{"transform": "number", "absolute": 3},
	}), ColumnType{Base: "jsonb"}, `{"email":"a@b.co","age":41,"contact":{"phones":["+1 555 0100","555-0199"]},"addresses":[{"city":"Paris"},{"city":"Rome"}],"plan":"pro"}`, validJSON},
}

func TestTransformersKeepTypeValid(t *testing.T) {
	for _, tc := range transformerCases {
		t.Run(tc.rule.Identity(), func(t *testing.T) {
			tr := mustT(t, tc.rule, testKey, tc.ct)
			out := apply(t, tr, tc.in)
			if err := tc.valid(out); err != nil {
				t.Fatalf("output of %s is not valid: %v", tc.rule.Identity(), err)
			}
			if tc.rule.Transform != "null" && tc.rule.Transform != "constant" && tc.rule.Transform != "regex" &&
				tc.rule.Transform != "partial" && out == tc.in {
				t.Fatalf("%s left the value unchanged", tc.rule.Identity())
			}
		})
	}
}

func TestTransformersDeterministicAndKeyed(t *testing.T) {
	other := bytes.Repeat([]byte{8}, KeySize)
	for _, tc := range transformerCases {
		a := mustT(t, tc.rule, testKey, tc.ct)
		b := mustT(t, tc.rule, testKey, tc.ct) // a second instance: no hidden state
		c := mustT(t, tc.rule, other, tc.ct)
		x, y, z := apply(t, a, tc.in), apply(t, b, tc.in), apply(t, c, tc.in)
		if x != apply(t, a, tc.in) || x != y {
			t.Errorf("%s: not deterministic", tc.rule.Identity())
		}
		keyed := !map[string]bool{"null": true, "constant": true, "regex": true, "partial": true}[tc.rule.Transform]
		if keyed && x == z {
			t.Errorf("%s: same output under a different key", tc.rule.Identity())
		}
	}
}

// The same value under the same rule masks identically whatever table or
// column it is in: the masker is keyed by rule, never by table.
func TestDeterministicAcrossTables(t *testing.T) {
	cat := &Catalog{Tables: []Table{
		{Schema: "public", Name: "users", Columns: []Column{{Name: "id", Type: "integer", Base: "int4"}, {Name: "email", Type: "text", Base: "text"}}},
		{Schema: "sales", Name: "orders", Columns: []Column{{Name: "contact_email", Type: "text", Base: "text"}, {Name: "n", Type: "integer", Base: "int4"}}},
	}}
	rules := Rules{"public.users.email": rule("email"), "sales.orders.contact_email": rule("email")}
	plan, err := BuildPlan(cat, rules, PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := plan.Table("public", "users", testKey)
	o, _ := plan.Table("sales", "orders", testKey)
	a, err := u.MaskCopyLine(nil, []byte("1\tjane@corp.io\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := o.MaskCopyLine(nil, []byte("jane@corp.io\t7\n"))
	if err != nil {
		t.Fatal(err)
	}
	ea := strings.Split(strings.TrimSpace(string(a)), "\t")[1]
	eb := strings.Split(string(b), "\t")[0]
	if ea != eb || ea == "jane@corp.io" {
		t.Fatalf("users.email masked to %q, orders.contact_email to %q", ea, eb)
	}
	vals, err := o.MaskValues([][]byte{[]byte("jane@corp.io"), nil})
	if err != nil || string(vals[0]) != eb || vals[1] != nil {
		t.Fatalf("MaskValues gave %q, %v (want %q, NULL): %v", vals[0], vals[1], eb, err)
	}
}

// Determinism across processes: a child process (this test binary re-run)
// loads the same key file and must mask to the same bytes.
func TestDeterministicAcrossProcesses(t *testing.T) {
	if path := os.Getenv("PGTWIN_MASK_CHILD_KEY"); path != "" {
		key, err := LoadOrCreateKey(path, zerolog.Nop())
		if err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Println("OUTPUT:" + maskSample(t, key))
		return
	}
	keyPath := filepath.Join(t.TempDir(), "etc", "mask.key")
	var logs bytes.Buffer
	key, err := LoadOrCreateKey(keyPath, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "created masking key") || strings.Contains(logs.String(), fmt.Sprintf("%x", key)) {
		t.Fatalf("key creation log: %s", logs.String())
	}
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != KeySize {
		t.Fatalf("key file: %v mode %v size %d", err, fi.Mode(), fi.Size())
	}
	want := maskSample(t, key)
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDeterministicAcrossProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PGTWIN_MASK_CHILD_KEY="+keyPath)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		i := strings.Index(string(out), "OUTPUT:")
		if i < 0 {
			t.Fatalf("child printed no output:\n%s", out)
		}
		got := strings.SplitN(string(out[i+7:]), "\n", 2)[0]
		if got != want {
			t.Fatalf("child process masked differently:\n got %s\nwant %s", got, want)
		}
	}
	again, err := LoadOrCreateKey(keyPath, zerolog.Nop())
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("reloading the key gave a different key (%v)", err)
	}
}

func maskSample(t testing.TB, key []byte) string {
	var parts []string
	for _, tc := range transformerCases {
		tr := mustT(t, tc.rule, key, tc.ct)
		parts = append(parts, apply(t, tr, tc.in))
	}
	return fmt.Sprintf("%q", parts)
}

func TestParseRulesErrorsNameTheKey(t *testing.T) {
	_, err := ParseRules(map[string]map[string]any{"public.users.email": {"transform": "emial"}})
	if err == nil || !strings.HasPrefix(err.Error(), `anonymize.columns."public.users.email": unknown transform "emial"`) {
		t.Fatalf("got %v", err)
	}
	_, err = ParseRules(map[string]map[string]any{"public.users.phone": {"transform": "phone", "keep_prefx": int64(2)}})
	if err == nil || !strings.Contains(err.Error(), `"public.users.phone"`) || !strings.Contains(err.Error(), `unknown parameter "keep_prefx"`) {
		t.Fatalf("got %v", err)
	}
	_, err = ParseRules(map[string]map[string]any{"public.t.c": {"transform": "regex", "pattern": "("}})
	if err == nil || !strings.Contains(err.Error(), `"public.t.c"`) {
		t.Fatalf("got %v", err)
	}
	r, err := ParseRules(map[string]map[string]any{"public.users.email": {"transform": "email", "unique": true}})
	if err != nil || r["public.users.email"].Identity() != rule("email").Identity() {
		t.Fatalf("got %v %v: unique = true is email's default and must be the same rule", r, err)
	}
}

// Uniqueness: 1,000,000 distinct emails and phones through the unique modes
// give 1,000,000 distinct outputs.
func TestUniqueModes(t *testing.T) {
	const n = 1_000_000
	cases := []struct {
		rule Rule
		gen  func(i int, b []byte) []byte
	}{
		{rule("email"), func(i int, b []byte) []byte { return fmt.Appendf(b, "user%d@corp%d.com", i, i%97) }},
		{rule("phone"), func(i int, b []byte) []byte {
			return fmt.Appendf(b, "+1 (%03d) %03d-%04d", 200+i/10_000_000, i/10000%1000, i%10000)
		}},
		{rule("name", "unique", true), func(i int, b []byte) []byte { return fmt.Appendf(b, "Person %d", i) }},
	}
	for _, tc := range cases {
		t.Run(tc.rule.Transform, func(t *testing.T) {
			tr := mustT(t, tc.rule, testKey, ColumnType{Base: "text"})
			if !tr.Unique() {
				t.Fatal("transformer does not claim uniqueness")
			}
			seen := make(map[string]struct{}, n)
			var in, out []byte
			for i := 0; i < n; i++ {
				in = tc.gen(i, in[:0])
				var err error
				out, _, err = tr.Append(out[:0], in)
				if err != nil {
					t.Fatal(err)
				}
				seen[string(out)] = struct{}{}
			}
			if len(seen) != n {
				t.Fatalf("%d distinct inputs gave %d distinct outputs", n, len(seen))
			}
		})
	}
}

func validEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return err
	}
	if a.Address != s {
		return fmt.Errorf("parsed as %q", a.Address)
	}
	return nil
}

func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("empty")
	}
	return nil
}

func sameShape(s string) error {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || strings.ContainsRune("+() -", c)) {
			return fmt.Errorf("unexpected %q in %q", c, s)
		}
	}
	return nil
}

func validIP(s string) error {
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	_, err := netip.ParseAddr(s)
	return err
}

func validCIDR(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return err
	}
	if p.Masked() != p {
		return fmt.Errorf("%s has host bits set", s)
	}
	return nil
}

func validDate(s string) error {
	_, err := time.Parse("2006-01-02", s)
	return err
}

func sameYear(y string) func(string) error {
	return func(s string) error {
		if err := validDate(s); err != nil {
			return err
		}
		if !strings.HasPrefix(s, y+"-") {
			return fmt.Errorf("%s not in %s", s, y)
		}
		return nil
	}
}

func validTimestamp(s string) error {
	_, err := time.Parse("2006-01-02 15:04:05.999-07", s)
	return err
}

func fitsNumeric(p, sc int) func(string) error {
	return func(s string) error {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return fmt.Errorf("%q is not a number", s)
		}
		if i := strings.IndexByte(s, '.'); (i < 0 && sc != 0) || (i >= 0 && len(s)-i-1 != sc) {
			return fmt.Errorf("%q does not have scale %d", s, sc)
		}
		intDigits := len(strings.TrimLeft(strings.SplitN(strings.TrimPrefix(s, "-"), ".", 2)[0], "0"))
		if intDigits > p-sc {
			return fmt.Errorf("%q does not fit numeric(%d,%d)", s, p, sc)
		}
		_ = r
		return nil
	}
}

func fitsScale(sc int) func(string) error {
	return func(s string) error {
		i := strings.IndexByte(s, '.')
		if i < 0 || len(s)-i-1 != sc {
			return fmt.Errorf("%q does not keep scale %d", s, sc)
		}
		return nil
	}
}

func fitsInt(lo, hi int64) func(string) error {
	return func(s string) error {
		var n int64
		if _, err := fmt.Sscan(s, &n); err != nil || n < lo || n > hi || fmt.Sprint(n) != s {
			return fmt.Errorf("%q not an integer in [%d,%d]", s, lo, hi)
		}
		return nil
	}
}

func validFloat(s string) error {
	var f float64
	_, err := fmt.Sscan(s, &f)
	return err
}

func hexLen(n int) func(string) error {
	return func(s string) error {
		if len(s) != n || strings.Trim(s, "0123456789abcdef") != "" {
			return fmt.Errorf("%q is not %d hex chars", s, n)
		}
		return nil
	}
}

func validUUID(s string) error {
	var u [16]byte
	if len(s) != 36 || !parseUUID(&u, []byte(s)) {
		return fmt.Errorf("%q is not a uuid", s)
	}
	return nil
}

func validJSON(s string) error {
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return err
	}
	if v["plan"] != "pro" {
		return fmt.Errorf("unmasked key changed: %s", s)
	}
	if err := validEmail(v["email"].(string)); err != nil {
		return fmt.Errorf("email inside json: %v", err)
	}
	if _, ok := v["age"].(float64); !ok {
		return fmt.Errorf("age is no longer a number: %s", s)
	}
	if strings.Contains(s, "Paris") || strings.Contains(s, "a@b.co") || strings.Contains(s, "555 0100") {
		return fmt.Errorf("PII left in %s", s)
	}
	return nil
}

// Output never overflows varchar(n): the target would reject the row.
func TestFitLength(t *testing.T) {
	email := mustT(t, rule("email"), testKey, ColumnType{Base: "varchar", Length: 26})
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		out := apply(t, email, fmt.Sprintf("someone%d@corp.com", i))
		if len(out) > 26 || validEmail(out) != nil || seen[out] {
			t.Fatalf("varchar(26) email %q (len %d, seen %v)", out, len(out), seen[out])
		}
		seen[out] = true
	}
	if !email.Unique() || mustT(t, rule("email"), testKey, ColumnType{Base: "varchar", Length: 20}).Unique() ||
		!mustT(t, rule("phone"), testKey, ColumnType{Base: "varchar", Length: 20}).Unique() ||
		mustT(t, rule("name", "unique", true), testKey, ColumnType{Base: "varchar", Length: 30}).Unique() {
		t.Fatal("uniqueness claims on narrow columns are wrong")
	}
	addr := mustT(t, rule("address", "part", "full"), testKey, ColumnType{Base: "varchar", Length: 12})
	if out := apply(t, addr, "1 Main St"); len([]rune(out)) > 12 {
		t.Fatalf("varchar(12) address %q", out)
	}
}

func TestArrayElementsMasked(t *testing.T) {
	tr := mustT(t, rule("email"), testKey, ColumnType{Base: "_text"})
	single := mustT(t, rule("email"), testKey, ColumnType{Base: "text"})
	out := apply(t, tr, `{a@b.com,"x y@z.com",NULL,"",{"nested@q.io"}}`)
	want := fmt.Sprintf(`{%s,%s,NULL,%s,{%s}}`, apply(t, single, "a@b.com"), apply(t, single, "x y@z.com"), apply(t, single, ""), apply(t, single, "nested@q.io"))
	if out != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	if got := arrayElements([]byte(`[0:1]={" a\"b",c\,d}`)); len(got) != 2 || string(got[0]) != ` a"b` || string(got[1]) != "c,d" {
		t.Fatalf("elements: %q", got)
	}
	for _, bad := range []string{"{a,", "{a,}", `{"a}`, "a", "{a}x"} {
		if _, _, err := tr.Append(nil, []byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if s := string(appendArrayElem(nil, []byte(`q"\ z`))); s != `"q\"\\ z"` {
		t.Fatalf("quoting: %s", s)
	}
}

// Noise near the type's limits is clamped, never out of range, whatever the
// key. (Kept apart from the table above: a clamped value is the same under
// every key, which that table's keyed check would misread.)
func TestNumberClampsToType(t *testing.T) {
	cases := []struct {
		r     Rule
		ct    ColumnType
		in    string
		valid func(string) error
	}{
		{rule("number", "absolute", 1000), ColumnType{Base: "numeric", Precision: 5, Scale: 1}, "-9990.5", fitsNumeric(5, 1)},
		{rule("number", "relative", 0.5), ColumnType{Base: "int2"}, "32760", fitsInt(-32768, 32767)},
	}
	for _, tc := range cases {
		for i := 0; i < 50; i++ {
			key := bytes.Repeat([]byte{byte(i)}, KeySize)
			out := apply(t, mustT(t, tc.r, key, tc.ct), tc.in)
			if err := tc.valid(out); err != nil {
				t.Fatalf("%s on %s with key %d: %v", tc.r.Identity(), tc.in, i, err)
			}
		}
	}
}
