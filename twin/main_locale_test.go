package twin

import (
	"testing"

	"github.com/pgtwin/pgtwin/engine"
)

// CREATE DATABASE's locale options: every value quoted, builtin (a
// PostgreSQL 17 source) spelled as libc on an older twin.
func TestLocaleClause(t *testing.T) {
	for _, c := range []struct {
		loc   engine.DatabaseLocale
		major int
		want  string
	}{
		{engine.DatabaseLocale{}, 15, ""},
		{engine.DatabaseLocale{Provider: "libc", Collate: "C", Ctype: "C"}, 15, ` LOCALE_PROVIDER 'libc' LC_COLLATE 'C' LC_CTYPE 'C'`},
		{engine.DatabaseLocale{Provider: "icu", Collate: "C", Ctype: "C", Locale: "en-US"}, 15, ` LOCALE_PROVIDER 'icu' LC_COLLATE 'C' LC_CTYPE 'C' ICU_LOCALE 'en-US'`},
		{engine.DatabaseLocale{Provider: "builtin", Collate: "en_US.UTF-8", Ctype: "en_US.UTF-8", Locale: "C.UTF-8"}, 15, ` LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'`},
		{engine.DatabaseLocale{Provider: "builtin", Collate: "C", Ctype: "C", Locale: "C"}, 17, ` LOCALE_PROVIDER 'builtin' LC_COLLATE 'C' LC_CTYPE 'C' BUILTIN_LOCALE 'C'`},
		{engine.DatabaseLocale{Provider: "libc", Collate: "x'; DROP ROLE y; --", Ctype: "C"}, 15, ` LOCALE_PROVIDER 'libc' LC_COLLATE 'x''; DROP ROLE y; --' LC_CTYPE 'C'`},
	} {
		if got := localeClause(c.loc, c.major); got != c.want {
			t.Errorf("localeClause(%+v, %d) = %q, want %q", c.loc, c.major, got, c.want)
		}
	}
}
