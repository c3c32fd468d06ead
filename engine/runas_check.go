package engine

import (
	"errors"
	"fmt"
	"os"
	"os/user"
)

// CheckRunAs says what is wrong with engine.run_as without changing the
// host, so the daemon can refuse it before it creates anything: root or
// another uid-0 user, or (when the daemon is root and would switch to it) a
// user that does not exist and is not DefaultRunAs, which the engine creates.
func CheckRunAs(name string) error {
	if os.Geteuid() != 0 {
		if name == "root" {
			return fmt.Errorf("engine.run_as = %q: PostgreSQL refuses to run as root; name an unprivileged user (default %s)", name, DefaultRunAs)
		}
		return nil // the engine runs postgres as the daemon's own user
	}
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	switch {
	case errors.As(err, &unknown) && name == DefaultRunAs:
		return nil
	case err != nil:
		return fmt.Errorf("engine.run_as = %q: %w (create it: useradd --system --user-group %s)", name, err, name)
	case u.Uid == "0":
		return fmt.Errorf("engine.run_as = %q: the user has uid 0, and PostgreSQL refuses to run as root; name an unprivileged user (default %s)", name, DefaultRunAs)
	}
	return nil
}
