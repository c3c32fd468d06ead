package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pgtwin/pgtwin/twin/api"
)

// Exit codes per SPEC.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a mistake in how the command was called: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode maps an error from Run to the process's exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	// The daemon rejects input it cannot accept (a malformed name, a bad
	// TTL) with 400: that is a usage error too, only found by the daemon.
	var se *api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusBadRequest {
		return exitUsage
	}
	return exitFailure
}

// describe turns an error into the one sentence printed after "pgtwin: ".
// The daemon's messages already say what is wrong; a hint is added where the
// next step is not obvious from the message alone.
func describe(err error) string {
	var se *api.StatusError
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted; the daemon finishes or rolls back what it started (check with pgtwin branches list)"
	case errors.As(err, &se):
		msg := strings.TrimRight(se.Message, ". \n")
		switch {
		case se.Code == http.StatusNotFound && !strings.Contains(msg, "list"):
			return msg + " (see pgtwin branches list and pgtwin snapshots list)"
		case se.Code == http.StatusForbidden && !strings.Contains(msg, "admin"):
			return msg + " (only the owner, members of the admin group and root may do this)"
		case se.Code >= 500 && !strings.Contains(msg, "journalctl"):
			return msg + " (the daemon's log says more: journalctl -u pgtwin)"
		}
		return msg
	}
	return err.Error()
}
