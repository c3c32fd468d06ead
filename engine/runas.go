package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// runAs is the OS user that initdb and postgres run as. When the daemon is
// not root it can only run them as itself.
type runAs struct {
	name     string
	uid, gid int
	switched bool // whether processes need a credential change
	self     string
}

// DefaultRunAs is engine.run_as when the config says nothing: a system user
// of pgtwin's own, so a postgres process pgtwin starts can reach nothing
// but pgtwin's clusters.
const DefaultRunAs = "pgtwin-pg"

func resolveRunAs(name string) (runAs, error) {
	me, err := user.Current()
	if err != nil {
		return runAs{}, fmt.Errorf("engine: current user: %w", err)
	}
	if os.Geteuid() != 0 {
		uid, _ := strconv.Atoi(me.Uid)
		gid, _ := strconv.Atoi(me.Gid)
		return runAs{name: me.Username, uid: uid, gid: gid, self: me.Username}, nil
	}
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) && name == DefaultRunAs {
		// A system user with no home and no shell, in a group of its own.
		out, aerr := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
			"--comment", "pgtwin postgres instances", name).CombinedOutput()
		if aerr != nil {
			return runAs{}, fmt.Errorf("engine.run_as = %q: useradd: %v: %s (create the user by hand, or install passwd)", name, aerr, strings.TrimSpace(string(out)))
		}
		u, err = user.Lookup(name)
	}
	if err != nil {
		return runAs{}, fmt.Errorf("engine.run_as = %q: %w (create it: useradd --system --user-group %s)", name, err, name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == 0 {
		return runAs{}, fmt.Errorf("engine.run_as = %q: PostgreSQL refuses to run as root; name an unprivileged user", name)
	}
	return runAs{name: u.Username, uid: uid, gid: gid, switched: true, self: me.Username}, nil
}

// sysProcAttr starts a process as run_as. detach puts it in its own session
// so it outlives the daemon and does not get the daemon's terminal signals.
func (u runAs) sysProcAttr(detach bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setsid: detach}
	if u.switched {
		a.Credential = &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{}}
	}
	return a
}

func (u runAs) chown(path string) error {
	if !u.switched {
		return nil
	}
	return os.Lchown(path, u.uid, u.gid)
}

// reachable makes sure run_as can walk down to dir: postgres must reach its
// data directory inside a volume and its socket directory under DataDir. dir
// itself (a directory the engine or its driver owns) gets search permission
// for others if it lacks it; an ancestor that blocks the way is an error.
func (u runAs) reachable(dir string, fix bool) error {
	if !u.switched {
		return nil
	}
	dir = filepath.Clean(dir)
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		ok := fi.Mode().Perm()&0o001 != 0 || (st != nil && int(st.Uid) == u.uid && fi.Mode().Perm()&0o100 != 0)
		if !ok {
			if p == dir && fix {
				if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
					return err
				}
			} else {
				return fmt.Errorf("engine.run_as %q cannot enter %s (mode %o): allow search for others (chmod o+x %s) or choose another daemon.data_dir", u.name, p, fi.Mode().Perm(), p)
			}
		}
		if p == "/" || p == filepath.Dir(p) {
			return nil
		}
	}
}

// warnSharedRunAs says loudly when run_as is a user that also runs other
// PostgreSQL clusters: as that user, postgres processes pgtwin starts (and
// anyone who breaks out of one) reach those clusters by peer
// authentication, and their files.
func (e *Engine) warnSharedRunAs() {
	if !e.user.switched {
		return
	}
	var others []string
	if e.user.name == "postgres" {
		others = append(others, "it is the distribution's PostgreSQL user")
	}
	own, _ := filepath.Abs(e.opts.DataDir)
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || int(st.Uid) != e.user.uid {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join(p, "comm"))
		if strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		cwd, err := os.Readlink(filepath.Join(p, "cwd"))
		if err != nil || strings.HasPrefix(cwd, own+string(filepath.Separator)) {
			continue
		}
		others = append(others, "it runs a postgres in "+cwd)
		break
	}
	if len(others) > 0 {
		e.log.Warn().Str("run_as", e.user.name).Str("why", strings.Join(others, "; ")).
			Msg("engine.run_as is shared with other PostgreSQL clusters: a branch that escaped to the OS would reach them; set engine.run_as to a dedicated user (default " + DefaultRunAs + ", created when missing)")
	}
}

// ownPGData gives run_as a data directory made when another user was run_as
// (an older daemon defaulted to postgres): postgres refuses to start on a
// data directory it does not own.
func (e *Engine) ownPGData(pgdata string) error {
	if !e.user.switched {
		return nil
	}
	fi, err := os.Stat(pgdata)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) == e.user.uid {
		return nil
	}
	e.log.Info().Str(logkey.Path, pgdata).Str("run_as", e.user.name).Msg("data directory belongs to another user; handing it to engine.run_as")
	if err := os.Lchown(filepath.Dir(pgdata), e.user.uid, e.user.gid); err != nil {
		return err
	}
	return filepath.WalkDir(pgdata, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, e.user.uid, e.user.gid)
	})
}
