package twinsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/internal/startstop"
)

// errNotRunning is the result of a run requested from a scheduler that is
// not started, or stopped before the run could begin.
var errNotRunning = errors.New("sync scheduler is not running")

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseSchedule parses sync.schedule: standard 5-field cron, an optional
// leading seconds field, @daily and friends, and a CRON_TZ=Zone prefix.
func parseSchedule(spec string) (cron.Schedule, error) {
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("sync.schedule %q: %w", spec, err)
	}
	return s, nil
}

// ValidateSchedule checks sync.schedule as the scheduler will read it; empty
// means no schedule.
func ValidateSchedule(spec string) error {
	if spec == "" {
		return nil
	}
	_, err := parseSchedule(spec)
	return err
}

// syncRun is one sync run, scheduled or requested. Everyone who asked for it
// while it ran shares it and its result.
type syncRun struct {
	Trigger   string // "schedule", "missed", "request"
	StartedAt time.Time

	done       chan struct{}
	err        error
	finishedAt time.Time
}

// Done is closed when the run has finished.
func (r *syncRun) Done() <-chan struct{} { return r.done }

// Err is the run's result once Done is closed (nil before).
func (r *syncRun) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// FinishedAt is when the run ended; zero while it runs.
func (r *syncRun) FinishedAt() time.Time {
	select {
	case <-r.done:
		return r.finishedAt
	default:
		return time.Time{}
	}
}

// Wait waits for the run's result or ctx, whichever comes first.
func (r *syncRun) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// schedulerConfig configures a Scheduler.
type schedulerConfig struct {
	// Spec is sync.schedule; empty means runs happen only on request.
	Spec string
	// syncRun does one sync. Its ctx ends when the scheduler stops.
	Run func(ctx context.Context) error
	// LastSuccess is when the last sync succeeded (the caller persists it);
	// if a scheduled time has passed since, Start runs once to catch up.
	// Zero means never: the first sync is the caller's to request.
	LastSuccess time.Time
	Log         zerolog.Logger
}

// scheduler runs syncs on the cron schedule and on request, one at a time:
// a request or a scheduled time while a run is going joins that run.
type scheduler struct {
	cfg   schedulerConfig
	sched cron.Schedule
	log   zerolog.Logger

	life    startstop.Base // the timer loop and the runs
	mu      sync.Mutex
	ctx     context.Context // the runs'; nil until Start
	cur     *syncRun
	last    *syncRun
	next    time.Time
	stopped bool
}

// newScheduler validates the spec.
func newScheduler(cfg schedulerConfig) (*scheduler, error) {
	if cfg.Run == nil {
		return nil, errors.New("sync scheduler: no run function")
	}
	s := &scheduler{cfg: cfg, log: cfg.Log.With().Str(logkey.Component, "sync-schedule").Logger()}
	if cfg.Spec != "" {
		sched, err := parseSchedule(cfg.Spec)
		if err != nil {
			return nil, err
		}
		s.sched = sched
	}
	return s, nil
}

// Start begins the schedule, first catching up a run missed while the
// daemon was down. Starting twice is an error; the runs live until Stop.
func (s *scheduler) Start(ctx context.Context) error {
	ctx, err := s.life.Begin(ctx)
	if err != nil {
		return fmt.Errorf("sync scheduler: %w", err)
	}
	s.mu.Lock()
	s.ctx, s.stopped = ctx, false
	now := time.Now()
	missed := s.sched != nil && !s.cfg.LastSuccess.IsZero() && !s.sched.Next(s.cfg.LastSuccess).After(now)
	s.mu.Unlock()

	if missed {
		s.log.Info().Time("last_success", s.cfg.LastSuccess).Msg("a scheduled sync was missed while the daemon was down; running it now")
		s.request("missed")
	}
	s.life.Go(s.timerLoop)
	return nil
}

// Stop cancels a running sync, waits for it, and ends the schedule. It is
// safe to call more than once, and before Start.
func (s *scheduler) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.life.Stop()
}

// Request starts a sync, or joins the one running, and returns it.
func (s *scheduler) Request() *syncRun { return s.request("request") }

func (s *scheduler) request(trigger string) *syncRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		return s.cur
	}
	r := &syncRun{Trigger: trigger, StartedAt: time.Now(), done: make(chan struct{})}
	if s.ctx == nil || s.stopped || s.ctx.Err() != nil || !s.life.Go(func() { s.execute(r) }) {
		r.err, r.finishedAt = errNotRunning, r.StartedAt
		close(r.done)
		return r
	}
	s.cur = r
	return r
}

func (s *scheduler) execute(r *syncRun) {
	log := s.log.With().Str(logkey.Trigger, r.Trigger).Logger()
	log.Info().Msg("sync started")
	err := s.cfg.Run(s.ctx)
	s.mu.Lock()
	r.err, r.finishedAt = err, time.Now()
	s.cur, s.last = nil, r
	s.mu.Unlock()
	close(r.done)
	switch {
	case err == nil:
		log.Info().Dur(logkey.Duration, r.finishedAt.Sub(r.StartedAt)).Msg("sync succeeded")
	case errors.Is(err, context.Canceled):
		log.Info().Msg("sync canceled")
	default:
		log.Error().Err(err).Msg("sync failed")
	}
}

// Current is the run in progress, or nil.
func (s *scheduler) Current() *syncRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Last is the most recent finished run, or nil.
func (s *scheduler) Last() *syncRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Next is the next scheduled time; zero when there is no schedule or the
// scheduler is not running.
func (s *scheduler) Next() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

func (s *scheduler) timerLoop() {
	if s.sched == nil {
		<-s.ctx.Done()
		return
	}
	for {
		next := s.sched.Next(time.Now())
		s.mu.Lock()
		s.next = next
		s.mu.Unlock()
		t := time.NewTimer(time.Until(next))
		select {
		case <-s.ctx.Done():
			t.Stop()
			s.mu.Lock()
			s.next = time.Time{}
			s.mu.Unlock()
			return
		case <-t.C:
		}
		if cur := s.Current(); cur != nil {
			s.log.Info().Str("running_since", cur.StartedAt.Format(time.RFC3339)).Msg("scheduled sync time reached while a sync runs; not starting another")
			continue
		}
		s.request("schedule")
	}
}
