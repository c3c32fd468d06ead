package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type binaries struct {
	dir     string
	version string // major, e.g. "15"
}

func (b binaries) path(name string) string { return filepath.Join(b.dir, name) }

const installHint = "install PostgreSQL (apt-get install postgresql postgresql-contrib) or set engine.postgres_bin to the directory holding postgres and initdb"

// findBinaries looks in engine.postgres_bin, then PATH, then the newest of the
// distribution directories (Debian's /usr/lib/postgresql/N/bin, RHEL's
// /usr/pgsql-N/bin).
func findBinaries(ctx context.Context, configured string) (binaries, error) {
	if configured != "" {
		dir := configured
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			dir = filepath.Dir(dir)
		}
		if !hasServer(dir) {
			return binaries{}, fmt.Errorf("%w: engine.postgres_bin = %q holds no postgres and initdb executables; %s", ErrNoPostgres, configured, installHint)
		}
		return probe(ctx, dir)
	}
	// PATH often holds symlinks (/usr/local/bin/postgres): the real
	// directory also has the client tools (pgbench, psql) of that version.
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && hasServer(filepath.Dir(real)) {
			return probe(ctx, filepath.Dir(real))
		}
		if hasServer(filepath.Dir(p)) {
			return probe(ctx, filepath.Dir(p))
		}
	}
	var dirs []string
	for _, pat := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"} {
		m, _ := filepath.Glob(pat)
		for _, d := range m {
			if hasServer(d) {
				dirs = append(dirs, d)
			}
		}
	}
	if len(dirs) == 0 {
		return binaries{}, fmt.Errorf("%w in engine.postgres_bin, PATH or /usr/lib/postgresql/*/bin; %s", ErrNoPostgres, installHint)
	}
	sort.SliceStable(dirs, func(i, j int) bool { return dirVersion(dirs[i]) > dirVersion(dirs[j]) })
	return probe(ctx, dirs[0])
}

func hasServer(dir string) bool {
	for _, n := range []string{"postgres", "initdb"} {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

var digitsRE = regexp.MustCompile(`\d+`)

func dirVersion(dir string) int {
	n, _ := strconv.Atoi(digitsRE.FindString(dir))
	return n
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// probe runs "postgres --version" (allowed as root: the root check comes after
// it) to learn the major version.
func probe(ctx context.Context, dir string) (binaries, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return binaries{}, fmt.Errorf("%w: %s/postgres --version: %v; %s", ErrNoPostgres, dir, err, installHint)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return binaries{}, fmt.Errorf("%w: %s/postgres --version printed %q", ErrNoPostgres, dir, strings.TrimSpace(string(out)))
	}
	major := m[1]
	if n, _ := strconv.Atoi(major); n < 10 {
		return binaries{}, fmt.Errorf("%w: %s is PostgreSQL %s.%s; pgtwin needs 12 or newer", ErrNoPostgres, dir, m[1], m[2])
	}
	return binaries{dir: dir, version: major}, nil
}
