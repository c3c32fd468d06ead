package twinsync

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// applyTimer tells where a session's time went: with PGTWIN_APPLY_TIMING=1
// each session writes, when it ends, its start-up steps and the time spent
// waiting for the source, in Go, and waiting for the twin, to stderr. It
// is a measuring aid for the apply benchmarks, off otherwise.
type applyTimer struct {
	on      bool
	start   time.Time
	steps   strings.Builder
	first   time.Time     // first change applied
	recv    time.Duration // waiting in ReceiveMessage
	twin    time.Duration // waiting for the twin (apply round trips)
	commit  time.Duration // of which group commits
	jobs    time.Duration // commits run in the background
	groups  int
	changes int64
}

var applyTiming = os.Getenv("PGTWIN_APPLY_TIMING") == "1"

func newApplyTimer() *applyTimer {
	return &applyTimer{on: applyTiming, start: time.Now()}
}

// step notes a start-up step's end.
func (t *applyTimer) step(name string) {
	if t == nil || !t.on {
		return
	}
	fmt.Fprintf(&t.steps, " %s=%s", name, time.Since(t.start).Round(100*time.Microsecond))
}

// since adds the time from at to *d.
func (t *applyTimer) since(d *time.Duration, at time.Time) {
	if t != nil && t.on {
		*d += time.Since(at)
	}
}

func (t *applyTimer) now() time.Time {
	if t == nil || !t.on {
		return time.Time{}
	}
	return time.Now()
}

func (t *applyTimer) report() {
	if t == nil || !t.on {
		return
	}
	total := time.Since(t.start)
	first := time.Duration(0)
	if !t.first.IsZero() {
		first = t.first.Sub(t.start)
	}
	fmt.Fprintf(os.Stderr, "apply timing: session %s, steps%s, first change %s, recv wait %s, twin wait %s (commits %s, %d groups), background jobs %s, changes %d\n",
		total.Round(time.Millisecond), t.steps.String(), first.Round(time.Millisecond), t.recv.Round(time.Millisecond),
		t.twin.Round(time.Millisecond), t.commit.Round(time.Millisecond), t.groups, t.jobs.Round(time.Millisecond), t.changes)
}
