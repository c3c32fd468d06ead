package twinsync

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Server errors about rows quote them: DETAIL "Key (email)=(…)", "Failing
// row contains (…)", CONTEXT "COPY t, line 3, column email: "…"", and data
// exceptions in the message itself. Before such an error is wrapped, logged
// or shown in `sync status`, redact keeps only what names the problem: the
// SQLSTATE, the schema/table/column/constraint fields, and messages of the
// classes that quote identifiers rather than values.

// redact returns err with every *pgconn.PgError in it replaced by a copy
// that carries no row data. Other errors pass unchanged.
func redact(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	clean := redactPgError(pgErr)
	if error(pgErr) == err {
		return clean
	}
	// The PgError is wrapped; its text is inside the wrappers' text too, so
	// rebuild the chain's message around the clean error.
	// errors.Is must still find the sentinels the chain held (a source
	// that went away during a retry is errSourceUnreachable, whatever
	// PostgreSQL said last).
	r := &redactedError{msg: strings.Replace(err.Error(), pgErr.Error(), clean.Error(), 1), pg: clean}
	for _, s := range keptSentinels {
		if errors.Is(err, s) {
			r.kept = append(r.kept, s)
		}
	}
	return r
}

// keptSentinels are the errors callers test for with errors.Is through a
// redacted chain.
var keptSentinels = []error{errSourceUnreachable, errNeedsResync, errSourceNotReady, errNotStreaming,
	context.Canceled, context.DeadlineExceeded}

type redactedError struct {
	msg  string
	pg   *pgconn.PgError
	kept []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return append([]error{e.pg}, e.kept...) }

// Classes whose messages name objects, not values.
var safeClasses = map[string]bool{
	"08": true, "0A": true, "23": true, "25": true, "28": true, "3D": true, "3F": true,
	"40": true, "42": true, "53": true, "54": true, "55": true, "57": true, "58": true,
}

var quoted = regexp.MustCompile(`"(?:[^"]|"")*"`)

func redactPgError(e *pgconn.PgError) *pgconn.PgError {
	c := &pgconn.PgError{
		Severity:            e.Severity,
		Code:                e.Code,
		Message:             e.Message,
		SchemaName:          e.SchemaName,
		TableName:           e.TableName,
		ColumnName:          e.ColumnName,
		DataTypeName:        e.DataTypeName,
		ConstraintName:      e.ConstraintName,
		SeverityUnlocalized: e.SeverityUnlocalized,
	}
	class := ""
	if len(e.Code) >= 2 {
		class = e.Code[:2]
	}
	switch {
	case safeClasses[class]:
	case class == "P0": // RAISE in a function: anything at all
		c.Message = "raised by a function (message withheld: it may quote row data)"
	default: // data exceptions and the rest quote the offending value
		c.Message = quoted.ReplaceAllString(e.Message, `"…"`)
		if i := strings.Index(c.Message, ": "); i >= 0 && class == "22" {
			c.Message = c.Message[:i] + ": (value withheld)"
		}
	}
	var where []string
	if e.SchemaName != "" && e.TableName != "" {
		where = append(where, "table "+e.SchemaName+"."+e.TableName)
	} else if e.TableName != "" {
		where = append(where, "table "+e.TableName)
	}
	if e.ColumnName != "" {
		where = append(where, "column "+e.ColumnName)
	}
	if e.ConstraintName != "" {
		where = append(where, "constraint "+e.ConstraintName)
	}
	if len(where) > 0 {
		c.Detail = strings.Join(where, ", ") // Error() does not print it; kept for callers that look
	}
	return c
}

var (
	keyValues  = regexp.MustCompile(`\)=\(.*?\)( is| already)`)
	failingRow = regexp.MustCompile(`(?i)failing row contains .*`)
)

// redactText cleans a client program's stderr: it drops DETAIL, CONTEXT,
// LINE and "Command was" lines (they quote rows or long DDL) and keeps at
// most the last few lines.
func redactText(s string) string {
	var keep []string
	inCommand := false
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "Command was:") {
			inCommand = true
		} else if strings.HasPrefix(t, "pg_restore:") || strings.HasPrefix(t, "pg_dump:") {
			inCommand = false
		}
		if t == "" || inCommand {
			continue
		}
		switch {
		case strings.HasPrefix(t, "DETAIL:"), strings.HasPrefix(t, "CONTEXT:"), strings.HasPrefix(t, "LINE "),
			strings.HasPrefix(t, "HINT:"), strings.HasPrefix(t, "Command was:"), strings.HasPrefix(t, "^"):
			continue
		}
		t = keyValues.ReplaceAllString(t, ")=(…)$1")
		t = failingRow.ReplaceAllString(t, "failing row withheld")
		keep = append(keep, t)
	}
	if len(keep) > 6 {
		keep = keep[len(keep)-6:]
	}
	return strings.Join(keep, "; ")
}
