package twinsync

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/logkey"
)

// The twin's database is created with the source database's locale, so
// ORDER BY, unique indexes on text and comparisons behave as they do there
// (and a C source's text indexes build as fast as in a C restore). It is
// read before main is replaced, as the new database is made with it.

// sourceLocaleSQL reads the current database's locale from pg_database,
// which every role may read. Provider and the provider's own locale came in
// 15 (daticulocale) and were renamed in 17 (datlocale, with builtin).
func sourceLocaleSQL(version int) string {
	const where = ` FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()`
	switch {
	case version >= 170000:
		return `SELECT datlocprovider::text, datcollate, datctype, coalesce(datlocale, '')` + where
	case version >= 150000:
		return `SELECT datlocprovider::text, datcollate, datctype, coalesce(daticulocale, '')` + where
	}
	return `SELECT 'c', datcollate, datctype, ''` + where
}

// readSourceLocale is the locale of the database conn is connected to.
func readSourceLocale(ctx context.Context, conn *pgx.Conn) (engine.DatabaseLocale, error) {
	version, err := serverMajor(ctx, conn)
	if err != nil {
		return engine.DatabaseLocale{}, err
	}
	var provider string
	var l engine.DatabaseLocale
	if err := conn.QueryRow(ctx, sourceLocaleSQL(version)).Scan(&provider, &l.Collate, &l.Ctype, &l.Locale); err != nil {
		return engine.DatabaseLocale{}, fmt.Errorf("read the source database's locale: %w", err)
	}
	switch provider {
	case "c":
		l.Provider, l.Locale = engine.LocaleLibc, ""
	case "i":
		l.Provider = engine.LocaleICU
	case "b":
		l.Provider = engine.LocaleBuiltin
	default:
		return engine.DatabaseLocale{}, fmt.Errorf("read the source database's locale: unknown provider %q", provider)
	}
	return l, nil
}

// sourceLocale connects to the source (retrying as a sync does) and reads
// its database's locale.
func sourceLocale(ctx context.Context, src source, b backoff, log zerolog.Logger) (engine.DatabaseLocale, error) {
	d := &dumper{Source: src, Backoff: b, Log: log}
	conn, err := d.connectSource(ctx)
	if err != nil {
		return engine.DatabaseLocale{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	l, err := readSourceLocale(ctx, conn)
	if err != nil {
		return engine.DatabaseLocale{}, redact(err)
	}
	log.Debug().Str(logkey.Locale, l.String()).Msg("source database locale")
	return l, nil
}

// replaceWithLocale is main.Replace with the source database's locale. A
// source it cannot read fails the run at step connect, as the fill would.
func replaceWithLocale(ctx context.Context, main Main, src source, b backoff, log zerolog.Logger,
	binDir string, fill func(context.Context, target) error) (string, error) {
	loc, err := sourceLocale(ctx, src, b, log)
	if err != nil {
		if ctx.Err() == nil {
			log.Error().Err(err).Str(logkey.Step, stepConnect).Msg("sync failed: could not read the source database's locale")
		}
		return "", &stepError{Step: stepConnect, Err: err}
	}
	return main.Replace(ctx, loc, func(ctx context.Context, conn string) error {
		return fill(ctx, target{ConnString: conn, BinDir: binDir})
	})
}
