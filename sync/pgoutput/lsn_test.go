package pgoutput

import (
	"encoding/json"
	"testing"
)

func TestLSNRoundTrip(t *testing.T) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "0/1"} {
		l, err := ParseLSN(s)
		if err != nil {
			t.Fatalf("ParseLSN(%q): %v", s, err)
		}
		if l.String() != s {
			t.Fatalf("ParseLSN(%q).String() = %q", s, l.String())
		}
	}
	l, _ := ParseLSN("16/B374D848")
	if l != 0x16_B374D848 {
		t.Fatalf("ParseLSN value = %#x", uint64(l))
	}
	if l2, _ := ParseLSN("16/b374d848"); l2 != l {
		t.Fatalf("lower case parses to %v", l2)
	}
	for _, bad := range []string{"", "16", "/1", "1/", "g/1", "1/2/3", "123456789/0", "-1/0"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) accepted", bad)
		}
	}
}

func TestLSNTextAndScan(t *testing.T) {
	b, err := json.Marshal(struct{ L LSN }{0x1_00000010})
	if err != nil || string(b) != `{"L":"1/10"}` {
		t.Fatalf("json = %s, %v", b, err)
	}
	var v struct{ L LSN }
	if err := json.Unmarshal(b, &v); err != nil || v.L != 0x1_00000010 {
		t.Fatalf("unmarshal = %v, %v", v.L, err)
	}
	var l LSN
	if err := l.Scan([]byte("A/B")); err != nil || l != 0xA_0000000B {
		t.Fatalf("scan = %v, %v", l, err)
	}
	if err := l.Scan(nil); err == nil {
		t.Fatal("scan of NULL accepted")
	}
	if val, _ := l.Value(); val != "A/B" {
		t.Fatalf("value = %v", val)
	}
}
