package twin

import (
	"context"
	"sync"
	"time"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/proxy"
	"github.com/pgtwin/pgtwin/internal/logkey"
)

// Redirector is the kernel path to running branches: while a branch runs,
// new connections to its port go straight to its postmaster, which then
// listens on Internal at the same port.
type Redirector interface {
	Internal() string
	On(port int) error
	Off(port int) error
	Conns() (map[int]int, error)
}

var _ Redirector = (*engine.Redirect)(nil)

// UseRedirect makes running branches reachable through r rather than the
// daemon's proxy. Call it before Start.
func (t *Twin) UseRedirect(r Redirector) {
	t.fleet.redirect = r
	t.fleet.direct = &directCache{r: r}
	t.eng = redirectingEngine{Engine: t.eng, r: r, t: t}
}

// redirectingEngine turns a branch's redirect on once its postmaster accepts
// connections and off before it is stopped, whoever starts or stops it.
type redirectingEngine struct {
	Engine
	r Redirector
	t *Twin
}

func (e redirectingEngine) Start(ctx context.Context, id string, spec engine.InstanceSpec) (*engine.Instance, error) {
	inst, err := e.Engine.Start(ctx, id, spec)
	if err == nil && spec.TCPAddress != "" {
		e.t.redirectOn(spec.Port)
	}
	return inst, err
}

func (e redirectingEngine) Stop(ctx context.Context, id string) error {
	inst, ok := e.Engine.Instance(id)
	if ok {
		if err := e.r.Off(inst.Port); err != nil {
			e.t.log.Error().Err(err).Int(logkey.Port, inst.Port).Msg("could not remove the branch's redirect; stopping it anyway")
		}
	}
	err := e.Engine.Stop(ctx, id)
	if err != nil && ok {
		if _, still := e.Engine.Instance(id); still {
			e.t.redirectOn(inst.Port)
		}
	}
	return err
}

// redirectOn sends new connections for port to the running postmaster; if
// that fails the daemon's proxy keeps serving them.
func (t *Twin) redirectOn(port int) {
	if t.fleet.redirect == nil {
		return
	}
	if err := t.fleet.redirect.On(port); err != nil {
		t.log.Warn().Err(err).Int(logkey.Port, port).Msg("could not redirect the branch's port; its proxy serves it")
	}
}

// directCache shares one reading of the socket table among the branches
// asking within directTTL.
type directCache struct {
	r     Redirector
	mu    sync.Mutex
	at    time.Time
	conns map[int]int
}

const directTTL = 50 * time.Millisecond

func (c *directCache) count(port int, fresh bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fresh || time.Since(c.at) > directTTL {
		conns, err := c.r.Conns()
		if err != nil {
			// Unknown counts as busy: never suspend on a guess.
			return 1
		}
		c.conns, c.at = conns, time.Now()
	}
	return c.conns[port]
}

// bypass is one branch's redirect as its proxy sees it.
type bypass struct {
	t    *Twin
	port int
}

var _ proxy.Bypass = bypass{}

func (b bypass) Conns(fresh bool) int { return b.t.fleet.direct.count(b.port, fresh) }
func (b bypass) Off() error           { return b.t.fleet.redirect.Off(b.port) }
func (b bypass) On() error            { return b.t.fleet.redirect.On(b.port) }
