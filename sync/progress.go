package twinsync

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Steps of a dump run, in order. Progress reports the current one and a
// failed run's StepError names the one that failed.
const (
	stepConnect   = "connect"   // reach the source, check versions
	stepPlan      = "plan"      // the masking plan check
	stepSchema    = "schema"    // export the snapshot, restore pre-data
	stepCopy      = "copy"      // COPY every table through the masker
	stepPostData  = "post-data" // indexes, constraints, triggers
	stepSequences = "sequences" // sequences set to the source's values
	stepAnalyze   = "analyze"
	stepDone      = "done"
)

// progress is a dump run's live state. The run writes it; any goroutine may
// call Stats at any time. The zero value is ready to use.
type progress struct {
	rows  atomic.Int64
	bytes atomic.Int64

	mu          sync.Mutex
	step        string
	started     time.Time // the run
	copyStarted time.Time
	tablesDone  int
	tablesTotal int
	estRows     int64 // sum of the source's reltuples, when known
	estBytes    int64 // sum of relpages * 8192, when reltuples is not
	active      map[string]struct{}
	steps       []stepTime
}

// stepTime is when a step began.
type stepTime struct {
	Step  string
	Start time.Time
}

// stats is a consistent reading of Progress.
type stats struct {
	Step        string
	StartedAt   time.Time
	TablesDone  int
	TablesTotal int
	Rows        int64
	Bytes       int64    // COPY text read from the source
	Active      []string // tables being copied now
	RateBytes   float64  // bytes per second since the copy began
	RateRows    float64  // rows per second since the copy began
	ETA         time.Duration
	HasETA      bool // ETA is an estimate from the source's statistics
	Now         time.Time
	Steps       []stepTime // every step so far, in order: where the time went
}

func (p *progress) begin(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started = now
	p.step = stepConnect
	p.steps = []stepTime{{stepConnect, now}}
}

func (p *progress) setStep(step string) {
	p.mu.Lock()
	p.step = step
	p.steps = append(p.steps, stepTime{step, time.Now()})
	p.mu.Unlock()
}

func (p *progress) startCopy(tables []*table, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.copyStarted = now
	p.tablesTotal = len(tables)
	p.active = map[string]struct{}{}
	known := true
	for _, t := range tables {
		if t.estRows < 0 {
			known = false
		}
		p.estRows += max(t.estRows, 0)
		p.estBytes += t.pages * 8192
	}
	if !known {
		p.estRows = 0
	}
}

func (p *progress) tableStarted(name string) {
	p.mu.Lock()
	p.active[name] = struct{}{}
	p.mu.Unlock()
}

func (p *progress) tableFinished(name string, ok bool) {
	p.mu.Lock()
	delete(p.active, name)
	if ok {
		p.tablesDone++
	}
	p.mu.Unlock()
}

// add counts rows and bytes copied; called per chunk, not per row.
func (p *progress) add(rows, bytes int64) {
	p.rows.Add(rows)
	p.bytes.Add(bytes)
}

// uncount takes back what a table's failed attempt counted before a retry.
func (p *progress) uncount(rows, bytes int64) { p.add(-rows, -bytes) }

// stats returns the current state with rate and ETA computed from it.
func (p *progress) Stats() stats { return p.statsAt(time.Now()) }

func (p *progress) statsAt(now time.Time) stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := stats{
		Step:        p.step,
		StartedAt:   p.started,
		TablesDone:  p.tablesDone,
		TablesTotal: p.tablesTotal,
		Rows:        p.rows.Load(),
		Bytes:       p.bytes.Load(),
		Now:         now,
		Steps:       append([]stepTime(nil), p.steps...),
	}
	for name := range p.active {
		s.Active = append(s.Active, name)
	}
	sort.Strings(s.Active)
	if p.copyStarted.IsZero() {
		return s
	}
	el := now.Sub(p.copyStarted).Seconds()
	if el <= 0 {
		return s
	}
	s.RateBytes = float64(s.Bytes) / el
	s.RateRows = float64(s.Rows) / el
	if p.step != stepCopy {
		return s
	}
	// Reltuples is the better guess of what is left; on-disk pages are a
	// rough stand-in for COPY bytes when tables were never analyzed.
	switch {
	case p.estRows > 0 && s.RateRows > 0:
		s.ETA, s.HasETA = secs(float64(max(p.estRows-s.Rows, 0))/s.RateRows), true
	case p.estBytes > 0 && s.RateBytes > 0:
		s.ETA, s.HasETA = secs(float64(max(p.estBytes-s.Bytes, 0))/s.RateBytes), true
	}
	return s
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// ETASeconds is the ETA as api.SyncStatus carries it: nil when unknown.
func (s stats) ETASeconds() *float64 {
	if !s.HasETA {
		return nil
	}
	v := s.ETA.Seconds()
	return &v
}
