package twin

import (
	"context"
	"fmt"

	"github.com/pgtwin/pgtwin/twin/api"
)

// Status is the daemon's state as caller c may see it.
func (t *Twin) Status(ctx context.Context, c Caller) api.Status {
	st := api.Status{
		Version: t.opts.Version, PID: t.pid(), StartedAt: t.started,
		Driver: t.eng.DriverName(), DataDir: t.cfg.Daemon.DataDir,
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
	st.PITR = t.pitrStatus()
	if syncer != nil {
		s := syncer.Status()
		st.Sync = &s
	}
	st.Warnings = []string{}
	if st.Sync != nil {
		st.Warnings = append(st.Warnings, st.Sync.Warnings...)
	}
	if free, total, ok := t.eng.PoolSpace(); ok {
		st.Pool = &api.PoolStatus{FreeBytes: free, TotalBytes: total}
		if w := poolWarning(free, total); w != "" {
			st.Warnings = append(st.Warnings, w)
		}
	}
	return st
}

// poolWarning says when the pool is nearly full: under 10% free, or under
// 1 GiB (at most a quarter of the pool, so a small pool is not always
// "nearly full"). One branch's writes, or a sync, can then fill it for
// everyone.
func poolWarning(free, total int64) string {
	low := max(total/10, min(1<<30, total/4))
	if free >= low {
		return ""
	}
	return fmt.Sprintf("the pool is nearly full: %s free of %s; delete branches or snapshots (pgtwin branches list, pgtwin snapshots list) or grow it",
		poolBytes(free), poolBytes(total))
}

func poolBytes(n int64) string {
	if n < 1<<30 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
