package twin

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/pgtwin/pgtwin/internal/config"
)

// MainName is the parent name of branches made from main's snapshots.
const MainName = "main"

var (
	branchNameRE   = regexp.MustCompile(`^[a-z0-9._/-]+$`)
	snapshotNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
)

// ValidateBranchName says, in one sentence, what is wrong with name.
func ValidateBranchName(name string) error {
	const rule = "use 1-63 characters of a-z, 0-9, '.', '_', '-' and '/'"
	switch {
	case name == "":
		return refuse(ErrInvalid, "a branch needs a name; %s", rule)
	case len(name) > 63:
		return refuse(ErrInvalid, "branch name is %d characters long; %s", len(name), rule)
	case name == MainName:
		return refuse(ErrInvalid, "\"main\" is the twin itself, not a branch; choose another name")
	case !branchNameRE.MatchString(name):
		return refuse(ErrInvalid, "branch name %q has characters that are not allowed; %s", name, rule)
	case strings.Contains(name, ".."):
		return refuse(ErrInvalid, "branch name %q contains \"..\"; remove it", name)
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/"):
		return refuse(ErrInvalid, "branch name %q starts or ends with '/'; remove it", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." {
			return refuse(ErrInvalid, "branch name %q has an empty or \".\" part between slashes; remove it", name)
		}
		// A name that reads as an option would be one in the scripts that
		// pass it on (rm -rf, pg_dump -d ...).
		if strings.HasPrefix(seg, "-") {
			return refuse(ErrInvalid, "branch name %q has a part starting with '-'; start each part between slashes with a letter, digit, '.' or '_'", name)
		}
	}
	return nil
}

// ValidateSnapshotName says what is wrong with a user-given snapshot name.
func ValidateSnapshotName(name string) error {
	if len(name) > 63 || !snapshotNameRE.MatchString(name) {
		return refuse(ErrInvalid, "snapshot name %q is not allowed; use 1-63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", name)
	}
	if name == MainName {
		return refuse(ErrInvalid, "\"main\" cannot name a snapshot; choose another name")
	}
	return nil
}

// snapshotID is the default id of a snapshot taken at t.
func snapshotID(t time.Time) string { return "s-" + t.UTC().Format("20060102T150405Z") }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand on Linux)
	return hex.EncodeToString(b)
}

// parseAt turns --at (RFC 3339 or a duration into the past) into a time.
func parseAt(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := config.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, refuse(ErrInvalid, "--at %q is neither an RFC 3339 time (2026-11-21T09:00:00Z) nor a duration into the past (2h, 1d)", s)
	}
	return now.Add(-d), nil
}

// parseTTL parses a TTL; 0 means none.
func parseTTL(s string) (time.Duration, error) {
	d, err := config.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, refuse(ErrInvalid, "TTL %q is not a duration; use e.g. 30m, 8h or 7d (0 for none)", s)
	}
	return d, nil
}

// sourceDatabase is the database named in the source URL, "postgres" if none.
func sourceDatabase(src string) string {
	src = strings.TrimSpace(src)
	if src == "" {
		return "postgres"
	}
	if strings.HasPrefix(src, "postgres://") || strings.HasPrefix(src, "postgresql://") {
		u, err := url.Parse(src)
		if err == nil {
			if db := strings.TrimPrefix(u.Path, "/"); db != "" {
				return db
			}
		}
		return "postgres"
	}
	for _, f := range strings.Fields(src) {
		if v, ok := strings.CutPrefix(f, "dbname="); ok && v != "" {
			return strings.Trim(v, "'")
		}
	}
	return "postgres"
}

// connectionURI is a branch's URL, without a password when password is
// empty. A wildcard listen address is reached on loopback.
func connectionURI(user, password, listen string, port int, db string) string {
	host := listen
	switch host {
	case "", "*", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u := url.URL{Scheme: "postgres", User: url.User(user), Host: fmt.Sprintf("%s:%d", host, port), Path: "/" + db}
	if password != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// roleFor is the login role of a branch owned by OS user name: the name
// itself, unless postgres reserves it or pgtwin's own roles use it.
func roleFor(name string) string {
	switch {
	case name == superuser, name == ownerRole, strings.HasPrefix(name, "pg_"), strings.HasPrefix(name, "pgtwin_"),
		name == "public", name == "none", name == "current_user", name == "session_user",
		name == "current_role", len(name) > 60:
		r := "u_" + name
		if len(r) > 63 {
			r = r[:63]
		}
		return r
	}
	return name
}
