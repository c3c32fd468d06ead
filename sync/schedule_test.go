package twinsync

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	for _, spec := range []string{"0 2 * * *", "*/5 * * * * *", "CRON_TZ=Europe/Berlin 0 2 * * *", "@daily"} {
		if _, err := parseSchedule(spec); err != nil {
			t.Errorf("ParseSchedule(%q): %v", spec, err)
		}
	}
	s, _ := parseSchedule("0 2 * * *")
	from := time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC)
	if got := s.Next(from); !got.Equal(time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("5-field spec: next after %v = %v, want 02:00:00", from, got)
	}
	if _, err := parseSchedule("every night"); err == nil {
		t.Error("a malformed spec parsed")
	}
}

// slowRun counts runs and the most that ever ran at once.
type slowRun struct {
	d                 time.Duration
	runs, active, max atomic.Int32
	err               error
}

func (s *slowRun) run(ctx context.Context) error {
	s.runs.Add(1)
	n := s.active.Add(1)
	defer s.active.Add(-1)
	for {
		m := s.max.Load()
		if n <= m || s.max.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-time.After(s.d):
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestSchedulerFiresWithoutOverlap(t *testing.T) {
	r := &slowRun{d: 1500 * time.Millisecond}
	s, err := newScheduler(schedulerConfig{Spec: "* * * * * *", Run: r.run})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if next := s.Next(); next.IsZero() {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(4200 * time.Millisecond)
	s.Stop()
	s.Stop() // idempotent
	if n := r.runs.Load(); n < 2 || n > 3 {
		t.Errorf("%d runs in 4.2s of a per-second schedule with 1.5s runs, want 2 or 3 (seconds that fire while a run is going join it)", n)
	}
	if m := r.max.Load(); m != 1 {
		t.Errorf("%d runs at once, want never more than 1", m)
	}
	if !s.Next().IsZero() {
		t.Error("a stopped scheduler reports a next run")
	}
	if err := s.Request().Wait(context.Background()); !errors.Is(err, errNotRunning) {
		t.Errorf("Request after Stop = %v, want ErrNotRunning", err)
	}
}

func TestSchedulerRequestsJoinTheRunningSync(t *testing.T) {
	r := &slowRun{d: 300 * time.Millisecond, err: errors.New("source unreachable")}
	s, err := newScheduler(schedulerConfig{Run: r.run}) // no schedule: requests only
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Request().Wait(context.Background()); !errors.Is(err, errNotRunning) {
		t.Errorf("Request before Start = %v, want ErrNotRunning", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
	a := s.Request()
	b := s.Request()
	if a != b || s.Current() != a {
		t.Fatal("a request while a sync runs did not join it")
	}
	errA, errB := a.Wait(context.Background()), b.Wait(context.Background())
	if errA == nil || errA != errB || r.runs.Load() != 1 {
		t.Errorf("joined requests got %v and %v after %d runs, want the same failure from 1 run", errA, errB, r.runs.Load())
	}
	if s.Last() != a || s.Current() != nil || a.FinishedAt().IsZero() {
		t.Error("the finished run is not reported as the last one")
	}
	c := s.Request()
	if c == a {
		t.Error("a request after the run finished joined the old run")
	}
	c.Wait(context.Background())
	if r.runs.Load() != 2 {
		t.Errorf("runs = %d, want 2", r.runs.Load())
	}
}

func TestSchedulerRunsMissedSyncOnceAtStart(t *testing.T) {
	for _, c := range []struct {
		name        string
		lastSuccess time.Time
		want        int32
	}{
		{"missed", time.Now().Add(-2 * time.Hour), 1},
		{"recent", time.Now().Add(-time.Second).Truncate(time.Hour).Add(time.Second), 0},
		{"never", time.Time{}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &slowRun{d: 10 * time.Millisecond}
			s, err := newScheduler(schedulerConfig{Spec: "0 * * * *", Run: r.run, LastSuccess: c.lastSuccess})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			if cur := s.Current(); cur != nil {
				if cur.Trigger != "missed" {
					t.Errorf("run at start has trigger %q, want missed", cur.Trigger)
				}
				cur.Wait(context.Background())
			}
			time.Sleep(100 * time.Millisecond)
			s.Stop()
			if n := r.runs.Load(); n != c.want {
				t.Errorf("last success %v: %d runs at start, want %d", c.lastSuccess, n, c.want)
			}
		})
	}
}

func TestSchedulerStopCancelsTheRun(t *testing.T) {
	r := &slowRun{d: time.Hour}
	s, _ := newScheduler(schedulerConfig{Spec: "0 2 * * *", Run: r.run})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	run := s.Request()
	start := time.Now()
	s.Stop()
	if err := run.Err(); !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("after Stop the run ended with %v, want context.Canceled at once", err)
	}
}
