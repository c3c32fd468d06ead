package pgoutput

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
)

// LSN is a PostgreSQL write-ahead log position (pg_lsn).
type LSN uint64

// ParseLSN parses the text form PostgreSQL prints, e.g. "16/B374D848".
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("parse lsn %q: want XXX/XXX", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse lsn %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse lsn %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// String formats the LSN the way PostgreSQL does.
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// MarshalText lets an LSN live in JSON and TOML state files in its usual form.
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (l *LSN) UnmarshalText(b []byte) error {
	v, err := ParseLSN(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Scan reads a pg_lsn column (text) or an integer, so pgx and database/sql can
// scan straight into an LSN.
func (l *LSN) Scan(src any) error {
	switch v := src.(type) {
	case string:
		return l.UnmarshalText([]byte(v))
	case []byte:
		return l.UnmarshalText(v)
	case int64:
		*l = LSN(v)
		return nil
	case nil:
		return fmt.Errorf("scan lsn: NULL")
	default:
		return fmt.Errorf("scan lsn: unsupported type %T", src)
	}
}

// Value writes the LSN as text, which PostgreSQL casts to pg_lsn.
func (l LSN) Value() (driver.Value, error) { return l.String(), nil }
