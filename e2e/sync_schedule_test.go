package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSyncSchedule: the cron schedule fires on its own, never starts a sync
// while one runs, and a run missed while the daemon was down runs at start.
func TestSyncSchedule(t *testing.T) {
	src := startShop(t, 300)
	// Every second: shorter than any sync (initdb alone takes longer), so
	// due times fall inside runs.
	d := startSyncDaemon(t, src, syncOpts{schedule: "* * * * * *"})

	scheduled := func(ev []logEvent, trigger string) int {
		n := 0
		for _, e := range ev {
			if e.Message == "sync succeeded" && e.Trigger == trigger {
				n++
			}
		}
		return n
	}
	eventually(t, 90*time.Second, "two scheduled syncs succeed", func() bool {
		return scheduled(d.schedulerEvents(t), "schedule") >= 2
	})
	if st := d.syncStatus(t); st.NextRun == nil || st.LastSuccess == nil {
		t.Errorf("sync status with a schedule: %+v", st)
	}
	d.stop()
	ev := d.schedulerEvents(t)
	running, skipped := false, 0
	for _, e := range ev {
		switch {
		case e.Message == "sync started":
			if running {
				t.Fatalf("a sync started at %s while another ran: %+v", e.Time, ev)
			}
			running = true
		case e.Message == "sync succeeded" || e.Message == "sync failed" || e.Message == "sync canceled":
			if !running {
				t.Fatalf("a sync ended at %s that never started: %+v", e.Time, ev)
			}
			running = false
		case strings.Contains(e.Message, "not starting another"):
			skipped++
		}
	}
	if skipped == 0 {
		t.Errorf("no scheduled time fell inside a run (syncs shorter than 1s?); overlap untested: %+v", ev)
	}
	if n := scheduled(ev, "request") + scheduled(ev, "missed"); n != 0 {
		t.Errorf("%d syncs ran that nobody scheduled", n)
	}

	// Missed: yearly schedule, last success long ago.
	cfg, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(d.Config, []byte(strings.Replace(string(cfg), `schedule = "* * * * * *"`, `schedule = "0 0 1 1 *"`, 1)), 0o644)
	statePath := filepath.Join(d.DataDir, "state", "sync.json")
	setLastSuccess := func(at time.Time) {
		b, err := os.ReadFile(statePath)
		if err != nil {
			t.Fatalf("the sync's state file: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		m["last_success"] = at.Format(time.RFC3339Nano)
		b, _ = json.Marshal(m)
		if err := os.WriteFile(statePath, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setLastSuccess(time.Now().AddDate(-2, 0, 0))
	d.start()
	eventually(t, 90*time.Second, "the missed sync runs at start", func() bool {
		return scheduled(d.schedulerEvents(t), "missed") == 1
	})
	st := d.syncStatus(t)
	if st.State != "idle" || st.LastSuccess == nil || time.Since(*st.LastSuccess) > time.Minute {
		t.Fatalf("after the missed sync: %+v", st)
	}
	// Nothing missed now: a restart runs nothing.
	d.stop()
	d.start()
	time.Sleep(3 * time.Second)
	if n := scheduled(d.schedulerEvents(t), "missed"); n != 1 {
		t.Fatalf("a restart right after a sync ran a missed sync again (%d in all)", n)
	}
	if st := d.syncStatus(t); st.State != "idle" {
		t.Fatalf("sync status after a restart with nothing missed: %+v", st)
	}
}
