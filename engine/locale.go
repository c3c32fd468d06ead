package engine

import "strings"

// Locale providers as pg_database.datlocprovider spells them out.
const (
	LocaleLibc    = "libc"
	LocaleICU     = "icu"
	LocaleBuiltin = "builtin" // PostgreSQL 17+
)

// DatabaseLocale is a database's collation and character classification,
// as CREATE DATABASE takes them: the twin's main database copies the
// source's, so text sorts and compares as it does there. The zero value is
// the cluster's default (initdb's locale).
type DatabaseLocale struct {
	Provider string // LocaleLibc (empty means libc), LocaleICU or LocaleBuiltin
	Collate  string // LC_COLLATE
	Ctype    string // LC_CTYPE
	// Locale is the provider's own locale: ICU_LOCALE or BUILTIN_LOCALE.
	Locale string
}

// IsZero reports whether l is the cluster's default.
func (l DatabaseLocale) IsZero() bool { return l == DatabaseLocale{} }

// String names l for logs and keys, e.g. "libc C/C" or "icu en-US (C/C)".
func (l DatabaseLocale) String() string {
	if l.IsZero() {
		return "default"
	}
	p := l.Provider
	if p == "" {
		p = LocaleLibc
	}
	var b strings.Builder
	b.WriteString(p)
	if l.Locale != "" {
		b.WriteString(" " + l.Locale + " (" + l.Collate + "/" + l.Ctype + ")")
	} else {
		b.WriteString(" " + l.Collate + "/" + l.Ctype)
	}
	return b.String()
}
