package e2e

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// osUser is who runs a CLI command; Cred nil means root (the test itself).
type osUser struct {
	Name string
	Cred *syscall.Credential
}

var root = osUser{Name: "root"}

func ensureGroup(t *testing.T, name string) int {
	t.Helper()
	if g, err := user.LookupGroup(name); err == nil {
		gid, _ := strconv.Atoi(g.Gid)
		return gid
	}
	if out, err := exec.Command("groupadd", "--system", name).CombinedOutput(); err != nil {
		t.Fatalf("groupadd %s (install passwd): %v: %s", name, err, out)
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatalf("group %s: %v", name, err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	return gid
}

// ensureUser creates an OS user (if missing) in the given groups and returns
// credentials that carry those groups, as a login would.
func ensureUser(t *testing.T, name string, groups ...string) osUser {
	t.Helper()
	if _, err := user.Lookup(name); err != nil {
		if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s (install passwd): %v: %s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	for _, g := range groups {
		ggid := ensureGroup(t, g)
		if out, err := exec.Command("usermod", "-a", "-G", g, name).CombinedOutput(); err != nil {
			t.Fatalf("usermod -a -G %s %s: %v: %s", g, name, err, out)
		}
		cred.Groups = append(cred.Groups, uint32(ggid))
	}
	return osUser{Name: name, Cred: cred}
}

// postmaster is a running postgres whose data directory is under a daemon's
// data dir.
type postmaster struct {
	pid    int
	pgdata string
}

// postmasters scans /proc for postgres processes started with -D under dir.
// A child a postmaster has just forked shows its parent's argv until it sets
// its title, so processes whose parent is one of them are left out.
func postmasters(dir string) []postmaster {
	all := postgresWithData(dir)
	pids := map[int]bool{}
	for _, p := range all {
		pids[p.pid] = true
	}
	var out []postmaster
	for _, p := range all {
		if !pids[ppid(p.pid)] {
			out = append(out, p)
		}
	}
	return out
}

// ppid reads a process's parent from /proc/PID/stat ("pid (comm) state ppid ...").
func ppid(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		if len(f) >= 2 {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func postgresWithData(dir string) []postmaster {
	var out []postmaster
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(argv[0]) != "postgres" {
			continue
		}
		for i, a := range argv {
			var pgdata string
			switch {
			case a == "-D" && i+1 < len(argv):
				pgdata = argv[i+1]
			case strings.HasPrefix(a, "-D") && len(a) > 2:
				pgdata = a[2:]
			default:
				continue
			}
			if pgdata == dir || strings.HasPrefix(filepath.Clean(pgdata), filepath.Clean(dir)+"/") {
				out = append(out, postmaster{pid: pid, pgdata: filepath.Clean(pgdata)})
			}
			break
		}
	}
	return out
}
