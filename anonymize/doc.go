// Package anonymize masks PII in rows streaming from the source before they are
// written anywhere on the dev host.
//
// It owns the masking rules (parsed from the config), the transformers, keyed
// determinism, PII detection, the plan that classifies every column of every
// table, a codec for PostgreSQL COPY text rows (so untouched columns pass
// through as bytes) and the leak check.
//
// Transformers work on the PostgreSQL text representation of a value, which is
// what both COPY text format and pgoutput text tuples carry, so a dump sync and
// a logical sync produce the same masked value for the same source value.
// Output depends only on (key, rule identity, value), never on the table, so
// the same email masks identically wherever it appears and joins still join.
//
// It must not know about Postgres connections, the sync modes or the daemon:
// callers hand it a Catalog (a description of tables) and rows, and get rows
// back. Values it sees must never reach logs or error messages.
package anonymize
