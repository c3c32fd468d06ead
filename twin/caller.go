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
}

// RootCaller sees and changes everything; for the daemon's own work and tests.
var RootCaller = Caller{UID: 0, User: "root", Admin: true}

func (c Caller) sees(r *branchRecord) bool { return c.Admin || r.OwnerUID == c.UID }

// CallerFor resolves peer credentials to a Caller: the user's name, and
// whether root or in daemon.admin_group (as primary or supplementary group).
func (t *Twin) CallerFor(uid, gid int) Caller {
	c := Caller{UID: uid, User: "uid" + strconv.Itoa(uid), Admin: uid == 0}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err == nil {
		c.User = u.Username
	}
	if c.Admin || t.cfg.Daemon.AdminGroup == "" {
		return c
	}
	g, err := user.LookupGroup(t.cfg.Daemon.AdminGroup)
	if err != nil {
		return c
	}
	if g.Gid == strconv.Itoa(gid) {
		c.Admin = true
		return c
	}
	if u != nil {
		if gids, err := u.GroupIds(); err == nil && slices.Contains(gids, g.Gid) {
			c.Admin = true
		}
	}
	return c
}
