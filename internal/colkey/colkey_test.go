package colkey

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

var roundTrip = [][3]string{
	{"public", "users", "email"},
	{"app", "order", "user.name"},
	{"app", `we"ird`, `"`},
	{"app", `a""b`, `.."..`},
	{"Sales", "Customers", "E-Mail"},
	{"public", "select", "from"},
	{"public", "my table", " lead space"},
	{"ünïcode", "таблица", "列.名"},
	{"a.b", "c.d", "e.f"},
	{"x", "'single'", `back\slash`},
	{"tab\there", "new\nline", "z"},
}

// Every triple survives Format, Parse, and a trip through a TOML key as
// mask plan prints it.
func TestRoundTrip(t *testing.T) {
	for _, p := range roundTrip {
		key := Format(p[0], p[1], p[2])
		s, tb, c, err := Parse(key)
		if err != nil {
			t.Errorf("Parse(%q) of %q: %v", key, p, err)
			continue
		}
		if got := [3]string{s, tb, c}; got != p {
			t.Errorf("Parse(Format(%q)) = %q (key %q)", p, got, key)
		}
		var m map[string]int
		doc := TOML(key) + " = 1\n"
		if _, err := toml.Decode(doc, &m); err != nil {
			t.Errorf("TOML(%q) = %s: not a TOML key: %v", key, TOML(key), err)
			continue
		}
		if _, ok := m[key]; !ok || len(m) != 1 {
			t.Errorf("TOML(%q) = %s decodes to %v", key, TOML(key), m)
		}
	}
}

func TestFormatQuotesOnlyWhatMust(t *testing.T) {
	for _, c := range []struct {
		parts [3]string
		want  string
		toml  string
	}{
		{[3]string{"public", "users", "email"}, "public.users.email", `"public.users.email"`},
		{[3]string{"app", "order", "user.name"}, `app.order."user.name"`, `'app.order."user.name"'`},
		{[3]string{"Sales", "select", "Full Name"}, "Sales.select.Full Name", `"Sales.select.Full Name"`},
		{[3]string{"s", `a"b`, "c"}, `s."a""b".c`, `'s."a""b".c'`},
		{[3]string{"s", "it's", "a.b"}, `s.it's."a.b"`, `"s.it's.\"a.b\""`},
	} {
		if got := Format(c.parts[0], c.parts[1], c.parts[2]); got != c.want {
			t.Errorf("Format(%q) = %s, want %s", c.parts, got, c.want)
		}
		if got := TOML(c.want); got != c.toml {
			t.Errorf("TOML(%s) = %s, want %s", c.want, got, c.toml)
		}
	}
}

// Spellings SQL would accept for the same column give one canonical key;
// quoting a part that needs none changes nothing, and case is never folded.
func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		`app."order"."user.name"`:  `app.order."user.name"`,
		`"public"."users"."email"`: "public.users.email",
		`public.Users.Email`:       "public.Users.Email",
		`"Public".users.email`:     "Public.users.email",
		`s."a""b".c`:               `s."a""b".c`,
		`s.t."c.d"`:                `s.t."c.d"`,
	} {
		got, err := Canonical(in)
		if err != nil || got != want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for in, want := range map[string]string{
		"app.order.user.name":   "schema.table.column",
		"users.email":           "schema.table.column",
		"public..email":         "schema.table.column",
		"public.users.":         "schema.table.column",
		`public.users."email`:   "never closes",
		`public.us"ers.email`:   "double quotes",
		`public."users"x.email`: "schema.table.column",
		`public."".email`:       "empty",
		`public.users."a"."b"`:  "schema.table.column",
		"":                      "schema.table.column",
	} {
		_, _, _, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", in, err, want)
		}
	}
}
