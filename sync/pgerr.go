package twinsync

import (
	"errors"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

// The one place in sync that reads PostgreSQL's SQLSTATEs: classify turns
// an error from the source (or the twin) into one of these sentinels, and
// the rest of the package asks errors.Is of what classify returned.
var (
	// errServerGone: the server is unreachable for now (connection
	// exception, shutdown, crash, starting up, too many connections).
	errServerGone = errors.New("server unavailable")
	// errObjectInUse: e.g. a replication slot still held by the walsender
	// of a connection that just died.
	errObjectInUse = errors.New("object in use")
	// errUndefinedObject: e.g. a replication slot that does not exist.
	errUndefinedObject = errors.New("undefined object")
	// errSlotInvalidated: a slot that lost the WAL it needed.
	errSlotInvalidated = errors.New("replication slot invalidated")
	// errInvalidParameter: e.g. SET TRANSACTION SNAPSHOT of a snapshot
	// that is gone.
	errInvalidParameter = errors.New("invalid parameter value")
	// errInsufficientPrivilege: the role may not do it (e.g. create or
	// alter a publication).
	errInsufficientPrivilege = errors.New("insufficient privilege")
	// errSQL: any other error the server reported.
	errSQL = errors.New("SQL error")
)

// classify returns the sentinel for err's SQLSTATE, errSQL for another
// server error, or nil when err is not a server error at all.
func classify(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil
	}
	switch code := pgErr.Code; {
	case pgerrcode.IsConnectionException(code), code == pgerrcode.AdminShutdown,
		code == pgerrcode.CrashShutdown, code == pgerrcode.CannotConnectNow,
		code == pgerrcode.TooManyConnections:
		return errServerGone
	case code == pgerrcode.ObjectInUse:
		return errObjectInUse
	case code == pgerrcode.UndefinedObject:
		return errUndefinedObject
	// An invalidated slot has no SQLSTATE of its own (55000, object not in
	// prerequisite state, covers much else): the message says it.
	case strings.Contains(pgErr.Message, "can no longer get changes"),
		strings.Contains(pgErr.Message, "has been invalidated"):
		return errSlotInvalidated
	case code == pgerrcode.InvalidParameterValue:
		return errInvalidParameter
	case code == pgerrcode.InsufficientPrivilege:
		return errInsufficientPrivilege
	}
	return errSQL
}
