package twin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// SyncMetrics is how the sync reports what the metrics cannot read from
// Syncer.Status at scrape time. Twin.SyncMetrics returns one. The lag is
// not among it: it is read from Syncer.Status at each scrape.
type SyncMetrics interface {
	// SyncFinished records one finished sync run (dump) or snapshot
	// (logical), and whether it failed.
	SyncFinished(d time.Duration, err error)
}

// metrics are the daemon's Prometheus series. They are kept whether or not
// daemon.metrics_address serves them.
type metrics struct {
	reg         *prometheus.Registry
	create      prometheus.Histogram
	reset       prometheus.Histogram
	wake        prometheus.Histogram
	wakeErrors  prometheus.Counter
	syncSeconds *prometheus.HistogramVec
}

var durationBuckets = []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

func newMetrics(t *Twin) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		create: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgtwin_branch_create_duration_seconds",
			Help: "Time to create a branch, until it accepts connections.", Buckets: durationBuckets}),
		reset: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgtwin_branch_reset_duration_seconds",
			Help: "Time to reset a branch.", Buckets: durationBuckets}),
		wake: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgtwin_branch_wake_duration_seconds",
			Help: "Time to start a suspended branch's instance until it accepts connections.", Buckets: durationBuckets}),
		wakeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgtwin_branch_wake_errors_total",
			Help: "Starts of a branch instance that failed."}),
		syncSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pgtwin_sync_duration_seconds",
			Help: "Duration of sync runs.", Buckets: []float64{1, 5, 15, 60, 300, 900, 3600, 4 * 3600}}, []string{"result"}),
	}
	m.reg.MustRegister(m.create, m.reset, m.wake, m.wakeErrors, m.syncSeconds,
		&fleetCollector{t: t}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeCreate(d time.Duration) { m.create.Observe(d.Seconds()) }
func (m *metrics) observeReset(d time.Duration)  { m.reset.Observe(d.Seconds()) }
func (m *metrics) observeWake(d time.Duration)   { m.wake.Observe(d.Seconds()) }
func (m *metrics) wakeFailed()                   { m.wakeErrors.Inc() }

// SyncFinished implements SyncMetrics.
func (m *metrics) SyncFinished(d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.syncSeconds.WithLabelValues(result).Observe(d.Seconds())
}

// SyncMetrics is where the sync reports its runs.
func (t *Twin) SyncMetrics() SyncMetrics { return t.met }

// MetricsHandler serves the metrics in the Prometheus text format.
func (t *Twin) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.met.reg, promhttp.HandlerOpts{})
}

// serveMetrics listens on daemon.metrics_address, if set, until ctx ends.
func (t *Twin) serveMetrics(ctx context.Context) error {
	addr := t.cfg.Daemon.MetricsAddress
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("daemon.metrics_address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", t.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.log.Error().Err(err).Msg("metrics server stopped")
		}
	}()
	context.AfterFunc(ctx, func() { srv.Close() })
	t.log.Info().Str(logkey.Addr, ln.Addr().String()).Msg("metrics listening")
	return nil
}

// fleetCollector reads branch states and proxy counters at scrape time.
type fleetCollector struct{ t *Twin }

var (
	descBranches = prometheus.NewDesc("pgtwin_branches", "Branches by state.", []string{"state"}, nil)
	descRunning  = prometheus.NewDesc("pgtwin_branches_running", "Branch instances running or starting.", nil, nil)
	descMaxRun   = prometheus.NewDesc("pgtwin_branches_max_running", "branches.max_running (0: no cap).", nil, nil)
	descConns    = prometheus.NewDesc("pgtwin_proxy_connections_total", "Client connections to branch listeners, by outcome.", []string{"outcome"}, nil)
	descActive   = prometheus.NewDesc("pgtwin_proxy_active_connections", "Client connections open through branch listeners.", nil, nil)
	descLagBytes = prometheus.NewDesc("pgtwin_sync_lag_bytes", "Logical mode: bytes of source WAL not yet applied to main.", nil, nil)
	descLagSecs  = prometheus.NewDesc("pgtwin_sync_lag_seconds", "Logical mode: seconds main is behind the source.", nil, nil)
)

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBranches, descRunning, descMaxRun, descConns, descActive, descLagBytes, descLagSecs} {
		ch <- d
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.t
	t.mu.Lock()
	states := map[string]int{api.StateCreating: 0, api.StateReady: 0, api.StateSuspended: 0,
		api.StateResetting: 0, api.StateDeleting: 0, api.StateFailed: 0}
	for _, b := range t.branches {
		states[b.State]++
	}
	running := len(t.fleet.running)
	s := t.fleet.retired
	var active int
	for _, p := range t.fleet.proxies {
		ps := p.Stats()
		s.Accepted += ps.Accepted
		s.Sessions += ps.Sessions
		s.Refused += ps.Refused
		s.WakeErrors += ps.WakeErrors
		s.Cancels += ps.Cancels
		active += p.Active()
	}
	t.mu.Unlock()
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(descBranches, prometheus.GaugeValue, float64(n), st)
	}
	ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(running))
	ch <- prometheus.MustNewConstMetric(descMaxRun, prometheus.GaugeValue, float64(t.cfg.Branches.MaxRunning))
	for outcome, n := range map[string]int64{"accepted": s.Accepted, "relayed": s.Sessions, "refused_superuser": s.Refused,
		"wake_failed": s.WakeErrors, "cancel_request": s.Cancels} {
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.CounterValue, float64(n), outcome)
	}
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(active))
	// The lag is read from the sync's status at the scrape, its one path
	// (0 when there is no logical sync or nothing is measured yet).
	var lagBytes, lagSecs float64
	if syncer := t.getSyncer(); syncer != nil {
		st := syncer.Status()
		if st.LagBytes != nil {
			lagBytes = float64(*st.LagBytes)
		}
		if st.LagSeconds != nil {
			lagSecs = *st.LagSeconds
		}
	}
	ch <- prometheus.MustNewConstMetric(descLagBytes, prometheus.GaugeValue, lagBytes)
	ch <- prometheus.MustNewConstMetric(descLagSecs, prometheus.GaugeValue, lagSecs)
}
