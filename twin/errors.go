package twin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/pgtwin/pgtwin/engine"
)

// Kinds of refusal. Test with errors.Is; the HTTP boundary maps each to a
// status code.
var (
	ErrInvalid   = errors.New("invalid request")
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrForbidden = errors.New("forbidden")
	ErrLimit     = errors.New("limit reached")
	ErrNotReady  = errors.New("not ready")
)

// Error is a refusal whose message is meant for the user as it stands: one
// sentence that says what to do.
type Error struct {
	kind error
	msg  string
}

func (e *Error) Error() string        { return e.msg }
func (e *Error) Is(target error) bool { return target == e.kind }

func refuse(kind error, format string, args ...any) error {
	return &Error{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// refusal is an error of a package behind the API (the sync) that is meant
// for the user as it stands: the request does not fit the current state.
type refusal interface {
	error
	Refusal()
}

// HTTPStatus maps an error to the status code the socket API answers with.
func HTTPStatus(err error) int {
	var r refusal
	switch {
	case errors.As(err, &r):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrLimit):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrNotReady):
		return http.StatusServiceUnavailable
	case errors.Is(err, engine.ErrNoSpace):
		return http.StatusInsufficientStorage
	case errors.Is(err, engine.ErrNoFreePort):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// userMessage is what the API says for err. Engine sentinels get a sentence
// that says what to do; other internal failures keep their wrapped context,
// which never carries row data.
func userMessage(err error) string {
	var te *Error
	if errors.As(err, &te) {
		return te.msg
	}
	var r refusal
	if errors.As(err, &r) {
		return err.Error()
	}
	switch {
	case errors.Is(err, engine.ErrNoSpace):
		return "the data directory's filesystem is full; delete branches or snapshots, or grow it, then retry"
	case errors.Is(err, engine.ErrNoFreePort):
		return "no free port is left in engine.port_range; delete branches or widen the range"
	case errors.Is(err, engine.ErrNoPostgres):
		return "the PostgreSQL server binaries were not found; install them or set engine.postgres_bin"
	}
	return err.Error() + "; see the daemon log (journalctl -u pgtwin) for details"
}
