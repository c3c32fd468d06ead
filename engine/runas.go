package engine

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// runAs is the OS user that initdb and postgres run as. When the daemon is
// not root it can only run them as itself.
type runAs struct {
	name     string
	uid, gid int
	switched bool // whether processes need a credential change
	self     string
}

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
	if err != nil {
		return runAs{}, fmt.Errorf("engine.run_as = %q: %w (create the user, e.g. by installing postgresql, or set engine.run_as)", name, err)
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
