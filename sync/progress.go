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
	StepConnect   = "connect"   // reach the source, check versions
	StepPlan      = "plan"      // the masking plan check
	StepSchema    = "schema"    // export the snapshot, restore pre-data
	StepCopy      = "copy"      // COPY every table through the masker
	StepPostData  = "post-data" // indexes, constraints, triggers
	StepSequences = "sequences" // sequences set to the source's values
	StepAnalyze   = "analyze"
	StepDone      = "done"
)

// Progress is a dump run's live state. The run writes it; any goroutine may
// call Stats at any time. The zero value is ready to use.
type Progress struct {
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
	steps       []StepTime
}

// StepTime is when a step began.
type StepTime struct {
	Step  string
	Start time.Time
}

// Stats is a consistent reading of Progress.
type Stats struct {
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
	Steps       []StepTime // every step so far, in order: where the time went
}

func (p *Progress) begin(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started = now
	p.step = StepConnect
	p.steps = []StepTime{{StepConnect, now}}
}

func (p *Progress) setStep(step string) {
	p.mu.Lock()
	p.step = step
	p.steps = append(p.steps, StepTime{step, time.Now()})
	p.mu.Unlock()
}

func (p *Progress) startCopy(tables []*table, now time.Time) {
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

func (p *Progress) tableStarted(name string) {
	p.mu.Lock()
	p.active[name] = struct{}{}
	p.mu.Unlock()
}

func (p *Progress) tableFinished(name string, ok bool) {
	p.mu.Lock()
	delete(p.active, name)
	if ok {
		p.tablesDone++
	}
	p.mu.Unlock()
}

// add counts rows and bytes copied; called per chunk, not per row.
func (p *Progress) add(rows, bytes int64) {
	p.rows.Add(rows)
	p.bytes.Add(bytes)
}

// uncount takes back what a table's failed attempt counted before a retry.
func (p *Progress) uncount(rows, bytes int64) { p.add(-rows, -bytes) }

// Stats returns the current state with rate and ETA computed from it.
func (p *Progress) Stats() Stats { return p.statsAt(time.Now()) }

func (p *Progress) statsAt(now time.Time) Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{
		Step:        p.step,
		StartedAt:   p.started,
		TablesDone:  p.tablesDone,
		TablesTotal: p.tablesTotal,
		Rows:        p.rows.Load(),
		Bytes:       p.bytes.Load(),
		Now:         now,
		Steps:       append([]StepTime(nil), p.steps...),
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
	if p.step != StepCopy {
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
func (s Stats) ETASeconds() *float64 {
	if !s.HasETA {
		return nil
	}
	v := s.ETA.Seconds()
	return &v
}
