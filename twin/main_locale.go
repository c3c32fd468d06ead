package twin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/logkey"
)

// createMainDatabase makes main's database db, owned by role (both already
// quoted), from template0 on a connection to another database of the fresh
// cluster. With a locale it is made with it, so text sorts, compares and is
// indexed as on the source. A locale this host cannot make (not installed,
// or not for UTF8) is not worth failing a sync for: the database gets the
// host's default and a warning says which locale was missing. It returns
// the locale the database got.
func (t *Twin) createMainDatabase(ctx context.Context, conn *pgx.Conn, db, role string, loc engine.DatabaseLocale) (engine.DatabaseLocale, error) {
	create := func(l engine.DatabaseLocale) error {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+db+" TEMPLATE template0"+localeClause(l, t.twinMajor())+" OWNER "+role)
		return err
	}
	if loc.IsZero() {
		return loc, create(loc)
	}
	tries := []engine.DatabaseLocale{loc}
	if loc.Provider == engine.LocaleICU && loc.Collate != "" {
		// ICU decides the collation; a missing libc locale for the rest
		// need not cost it.
		tries = append(tries, engine.DatabaseLocale{Provider: engine.LocaleICU, Locale: loc.Locale})
	}
	tries = append(tries, engine.DatabaseLocale{})
	var first error
	for _, l := range tries {
		err := create(l)
		if err == nil {
			if first != nil {
				t.log.Warn().Err(first).Str(logkey.Locale, loc.String()).Str(logkey.LocaleUsed, l.String()).
					Msg("the source database's locale is not available on this host: the twin's database uses another, so text may sort differently; install the locale (e.g. apt-get install locales-all) to match")
			}
			return l, nil
		}
		if !badLocale(err) {
			return engine.DatabaseLocale{}, err
		}
		if first == nil {
			first = err
		}
	}
	return engine.DatabaseLocale{}, first
}

// badLocale reports whether CREATE DATABASE refused the locale itself: an
// unknown name (42809 on PostgreSQL 15, 42704 / 22023 elsewhere) or one
// that does not match the encoding (22023).
func badLocale(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case pgerrcode.InvalidParameterValue, pgerrcode.UndefinedObject, pgerrcode.WrongObjectType,
		pgerrcode.FeatureNotSupported:
		return true
	}
	return false
}

// localeClause is CREATE DATABASE's locale options for l on a twin of
// PostgreSQL major; empty for the default. Before 17 there is no builtin
// provider: its "C" and "C.UTF-8" are libc's (code point order either way).
func localeClause(l engine.DatabaseLocale, major int) string {
	if l.IsZero() {
		return ""
	}
	if l.Provider == engine.LocaleBuiltin && major < 17 {
		l = engine.DatabaseLocale{Collate: l.Locale, Ctype: l.Locale}
	}
	var b strings.Builder
	if l.Provider != "" {
		b.WriteString(" LOCALE_PROVIDER " + quoteLiteral(l.Provider))
	}
	if l.Collate != "" {
		b.WriteString(" LC_COLLATE " + quoteLiteral(l.Collate))
	}
	if l.Ctype != "" {
		b.WriteString(" LC_CTYPE " + quoteLiteral(l.Ctype))
	}
	switch l.Provider {
	case engine.LocaleICU:
		b.WriteString(" ICU_LOCALE " + quoteLiteral(l.Locale))
	case engine.LocaleBuiltin:
		b.WriteString(" BUILTIN_LOCALE " + quoteLiteral(l.Locale))
	}
	return b.String()
}

// quoteLiteral quotes s as an SQL string (standard_conforming_strings is
// on in every cluster the engine makes).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// twinMajor is the twin's PostgreSQL major version, 0 if unknown.
func (t *Twin) twinMajor() int {
	var v int
	fmt.Sscan(t.eng.Version(), &v)
	return v
}
