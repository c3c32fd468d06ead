package twin

import (
	"context"

	"github.com/pgtwin/pgtwin/twin/api"
)

// Status is the daemon's state as caller c may see it.
func (t *Twin) Status(ctx context.Context, c Caller) api.Status {
	st := api.Status{
		Version: t.opts.Version, PID: t.pid(), StartedAt: t.started,
		Driver: t.eng.Driver().Name(), DataDir: t.cfg.Daemon.DataDir,
		CallerUser: c.User, CallerIsAdmin: c.Admin,
	}
	t.mu.Lock()
	var mainVol string
	if t.main != nil {
		st.Main = api.MainStatus{State: t.main.State, Database: t.main.Database, Port: t.main.Port}
		mainVol = t.main.Volume
	}
	if s := t.mainSnapshots(); len(s) > 0 {
		st.Main.LatestSnapshot = s[0].ID
	}
	var ids []string
	for _, b := range t.branches {
		if !c.sees(b) {
			continue
		}
		st.Branches++
		if b.State == api.StateSuspended {
			st.Suspended++
		} else {
			ids = append(ids, b.ID)
		}
	}
	for _, s := range t.snaps {
		if s.State == stateReady && t.seesSnapshot(c, s) {
			st.Snapshots++
		}
	}
	syncer := t.syncer
	t.mu.Unlock()
	// Counted from the process table, not the records: what runs is what
	// costs memory.
	var dirs []string
	for _, id := range ids {
		if inst, ok := t.eng.Instance(id); ok {
			st.Running++
			dirs = append(dirs, inst.DataDir)
		}
	}
	st.BranchMemory = instanceMemory(dirs)
	if mainVol != "" {
		if u, err := t.eng.Usage(ctx, mainVol); err == nil {
			st.Main.SizeBytes = u.TotalBytes
		}
		if _, ok := t.eng.Instance(mainVol); !ok && st.Main.State == stateReady {
			st.Main.State = "stopped"
		}
	}
	if syncer != nil {
		s := syncer.Status()
		st.Sync = &s
	}
	return st
}
