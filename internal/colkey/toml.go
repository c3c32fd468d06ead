package colkey

import (
	"fmt"
	"strings"
)

// TOML is key written as a TOML key, ready to paste under
// [anonymize.columns]: "public.users.email" for a plain key, and the literal
// form SPEC.md shows ('app."order"."user.name"') when the key holds quotes,
// so that it reads as SQL does.
func TOML(key string) string {
	plain, literal := true, true
	for _, r := range key {
		switch {
		case r == '"' || r == '\\':
			plain = false
		case r == '\'':
			literal = false
		case r < 0x20 || r == 0x7f:
			plain, literal = false, false
		}
	}
	switch {
	case plain:
		return `"` + key + `"`
	case literal:
		return `'` + key + `'`
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range key {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
