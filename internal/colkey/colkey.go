// Package colkey reads and writes the keys of [anonymize.columns]:
// schema.table.column, where a part holding a dot or a double quote is
// written in double quotes as SQL spells it ("" for a quote inside).
//
// Unlike SQL, an unquoted part is taken as written, never folded to lower
// case: `public.Users.Email` names the column "Email" of "Users", as it
// always has in pgtwin configs. Quoting a part that needs none is allowed
// (`public."users".email` is the same key as `public.users.email`), so
// upper case and reserved words never need quotes, and Format quotes only
// what must be quoted: what it prints parses back to the same three parts.
package colkey

import (
	"errors"
	"strings"
)

// ErrForm is the error of a key that is not schema.table.column.
var ErrForm = errors.New(`key must be schema.table.column (a part holding a dot or quote goes in double quotes, e.g. app."order"."user.name")`)

// Format is the key of schema.table.column in its canonical form.
func Format(schema, table, column string) string {
	return Part(schema) + "." + Part(table) + "." + Part(column)
}

// Part is one part of a key, quoted only when it holds a dot or a quote
// (or is empty, which no identifier is, so that it cannot vanish).
func Part(s string) string {
	if s != "" && !strings.ContainsAny(s, `."`) {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Parse splits a key into its three parts, undoing the quoting.
func Parse(key string) (schema, table, column string, err error) {
	var parts [3]string
	rest := key
	for i := range parts {
		var p string
		if p, rest, err = cut(rest); err != nil {
			return "", "", "", err
		}
		parts[i] = p
		switch {
		case i < 2 && !strings.HasPrefix(rest, "."):
			return "", "", "", ErrForm
		case i < 2:
			rest = rest[1:]
		case rest != "":
			return "", "", "", ErrForm
		}
	}
	return parts[0], parts[1], parts[2], nil
}

// Canonical is key in the form Format prints: two spellings of one column
// have the same canonical key.
func Canonical(key string) (string, error) {
	s, t, c, err := Parse(key)
	if err != nil {
		return "", err
	}
	return Format(s, t, c), nil
}

// cut reads one part from the front of s and returns it with what follows.
func cut(s string) (part, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			i = len(s)
		}
		part, rest = s[:i], s[i:]
		switch {
		case part == "":
			return "", "", ErrForm
		case strings.Contains(part, `"`):
			return "", "", errors.New(`a key part holding a quote must be written in double quotes, with "" for each quote inside`)
		}
		return part, rest, nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		if b.Len() == 0 {
			return "", "", errors.New(`a key part cannot be empty ("")`)
		}
		return b.String(), s[i+1:], nil
	}
	return "", "", errors.New("a key part opens a double quote and never closes it")
}
