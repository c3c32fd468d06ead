package twin

import (
	"os/user"
	"slices"
	"strconv"
)

// Caller is who asks: from the socket's peer credentials.
type Caller struct {
	UID   int
	User  string
	Admin bool // root or a member of daemon.admin_group
	// CanSync: may start a sync or resync (admins and members of
	// sync.allow_group).
	CanSync bool
}

// RootCaller sees and changes everything; for the daemon's own work and tests.
var RootCaller = Caller{UID: 0, User: "root", Admin: true, CanSync: true}

func (c Caller) sees(r *branchRecord) bool { return c.Admin || r.OwnerUID == c.UID }

// owns says whether c is r's owner, the only one shown its password.
func (c Caller) owns(r *branchRecord) bool { return r.OwnerUID == c.UID }

// CallerFor resolves peer credentials to a Caller: the user's name, whether
// root or in daemon.admin_group, and whether in sync.allow_group (each as
// primary or supplementary group).
func (t *Twin) CallerFor(uid, gid int) Caller {
	c := Caller{UID: uid, User: "uid" + strconv.Itoa(uid), Admin: uid == 0}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		u = nil
	} else {
		c.User = u.Username
	}
	c.Admin = c.Admin || inGroup(u, gid, t.cfg.Daemon.AdminGroup)
	c.CanSync = c.Admin || inGroup(u, gid, t.cfg.Sync.AllowGroup)
	return c
}

// inGroup says whether the peer (user u, nil if unknown, with primary gid)
// is in the group named group. An empty or unknown group has no members.
func inGroup(u *user.User, gid int, group string) bool {
	if group == "" {
		return false
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return false
	}
	if g.Gid == strconv.Itoa(gid) {
		return true
	}
	if u == nil {
		return false
	}
	gids, err := u.GroupIds()
	return err == nil && slices.Contains(gids, g.Gid)
}

// checkUserQuota refuses a new branch to a non-admin who already holds
// branches.max_per_user, so one user cannot take every port. Admins are
// bounded by branches.max_branches only. Call with t.mu held.
func (t *Twin) checkUserQuota(c Caller) error {
	max := t.cfg.Branches.MaxPerUser
	if c.Admin || max <= 0 {
		return nil
	}
	n := 0
	for _, b := range t.branches {
		if b.OwnerUID == c.UID {
			n++
		}
	}
	if n >= max {
		return refuse(ErrLimit, "you already hold %d branches, the limit per user (branches.max_per_user = %d); delete some first (pgtwin branches delete NAME)", n, max)
	}
	return nil
}

// mayStartSync refuses c unless it may start a sync or resync.
func (t *Twin) mayStartSync(c Caller) error {
	if c.CanSync {
		return nil
	}
	admins := "admins (root and members of daemon.admin_group"
	if g := t.cfg.Daemon.AdminGroup; g != "" {
		admins += " " + strconv.Quote(g)
	}
	admins += ")"
	if g := t.cfg.Sync.AllowGroup; g != "" {
		return refuse(ErrForbidden, "starting a sync is for %s and members of sync.allow_group %q; ask an admin to start it or to add you to that group", admins, g)
	}
	return refuse(ErrForbidden, "starting a sync is for %s only (sync.allow_group is empty); ask an admin to start it or to set sync.allow_group", admins)
}
