package twin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/proxy"
	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// fleet is what the twin keeps about branch instances beyond their records:
// the TCP listener of each branch, and which instances count against
// branches.max_running. Guarded by Twin.mu.
type fleet struct {
	proxies map[string]*proxy.Proxy // by branch id
	// running holds the branch ids whose instance runs or is being started:
	// a slot is claimed before a start, so two starts never both take the
	// last one.
	running map[string]bool
	// upSince is when each running branch was last started or resumed; the
	// idle sweeper counts idleness from it as well as from client activity.
	upSince map[string]time.Time
	retired proxy.Stats // counts of proxies since closed, for metrics
	// measuring is set while a branch list measures changed_bytes.
	measuring atomic.Bool
	// redirect, when set, takes connections to running branches past their
	// proxies (redirect.go); set before Start, then only read.
	redirect Redirector
	direct   *directCache
}

func newFleet() fleet {
	return fleet{proxies: map[string]*proxy.Proxy{}, running: map[string]bool{}, upSince: map[string]time.Time{}}
}

// branchSpec is how every branch instance runs: on its unix socket only,
// the daemon's proxy holding its TCP port; with a kernel redirect, also on
// the redirect's internal address at the same port.
func (t *Twin) branchSpec(port int) engine.InstanceSpec {
	if r := t.fleet.redirect; r != nil {
		return engine.InstanceSpec{Port: port, Settings: t.cfg.Branches.Settings, TCPAddress: r.Internal()}
	}
	return engine.InstanceSpec{Port: port, Settings: t.cfg.Branches.Settings, NoTCP: true}
}

func socketPath(inst *engine.Instance) string {
	return filepath.Join(inst.SocketDir, ".s.PGSQL."+strconv.Itoa(inst.Port))
}

// openProxy starts the branch's listener on engine.listen_address and its
// port, unless it has one.
func (t *Twin) openProxy(rec *branchRecord) error {
	t.mu.Lock()
	id, name, port := rec.ID, rec.Name, rec.Port
	if t.fleet.proxies[id] != nil {
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	addr := net.JoinHostPort(t.listenAddress(), strconv.Itoa(port))
	var by proxy.Bypass
	if t.fleet.redirect != nil {
		by = bypass{t, port}
	}
	p := proxy.New(proxy.Options{
		Bypass:              by,
		Addr:                addr,
		Backend:             proxy.NewWaker(func(ctx context.Context) (string, error) { return t.wake(ctx, id) }, 0),
		Logger:              t.log.With().Str(logkey.Branch, name).Logger(),
		RefuseUser:          superuser,
		RefuseAlso:          []string{engine.ReaderRole},
		Name:                fmt.Sprintf("branch %q", name),
		CloseSessionsOnStop: true,
	})
	if err := p.Start(context.Background()); err != nil {
		if errors.Is(err, proxy.ErrAddrInUse) {
			return fmt.Errorf("branch %s: port %d on %s is taken by another program; stop it or delete the branch: %w", name, port, t.listenAddress(), err)
		}
		return fmt.Errorf("branch %s: %w", name, err)
	}
	t.mu.Lock()
	if t.fleet.proxies[id] != nil || t.branches[name] != rec {
		t.mu.Unlock()
		p.Stop()
		return nil
	}
	t.fleet.proxies[id] = p
	t.mu.Unlock()
	return nil
}

func (t *Twin) listenAddress() string {
	if a := t.cfg.Engine.ListenAddress; a != "" {
		return a
	}
	return "127.0.0.1"
}

// openProxies gives every branch that lacks one its listener; one that
// cannot listen is logged and tried again by the next sweep.
func (t *Twin) openProxies() {
	t.mu.Lock()
	var recs []*branchRecord
	for _, b := range t.branches {
		// A branch being created gets its listener from CreateBranch.
		if t.fleet.proxies[b.ID] == nil && b.State != stateDeleting && b.State != stateCreating {
			recs = append(recs, b)
		}
	}
	t.mu.Unlock()
	for _, r := range recs {
		if err := t.openProxy(r); err != nil {
			t.log.Error().Err(err).Msg("branch listener not started; its URL does not answer")
			continue
		}
		t.redirectRunning(r)
	}
	t.unredirectDead()
}

// unredirectDead sends the connections of a redirected branch whose
// postmaster died back to its proxy, which starts it again; the redirect
// would have them refused.
func (t *Twin) unredirectDead() {
	r := t.fleet.redirect
	if r == nil {
		return
	}
	type branch struct {
		id, name string
		port     int
	}
	var up []branch
	t.mu.Lock()
	for _, b := range t.branches {
		if t.fleet.running[b.ID] && b.State == stateReady {
			up = append(up, branch{b.ID, b.Name, b.Port})
		}
	}
	t.mu.Unlock()
	for _, b := range up {
		if _, ok := t.eng.Instance(b.id); ok {
			continue
		}
		if err := r.Off(b.port); err != nil {
			t.log.Error().Err(err).Str(logkey.Branch, b.name).Msg("could not remove the redirect of a branch whose postmaster is gone")
		}
	}
}

// redirectRunning turns the redirect on for a branch found running (after
// a daemon restart), restarting its postmaster if it lacks the internal
// listener, as one started by a daemon without a redirect does.
func (t *Twin) redirectRunning(rec *branchRecord) {
	if t.fleet.redirect == nil {
		return
	}
	t.mu.Lock()
	id, port, st := rec.ID, rec.Port, rec.State
	m := t.lockFor(id)
	t.mu.Unlock()
	if _, ok := t.eng.Instance(id); !ok || st != stateReady || !m.TryLock() {
		return
	}
	defer m.Unlock()
	if _, err := t.eng.Start(context.Background(), id, t.branchSpec(port)); err != nil {
		t.log.Warn().Err(err).Str(logkey.Branch, rec.Name).Msg("running branch not redirected; its proxy serves it")
	}
}

// closeProxy stops the branch's listener and ends its client sessions.
func (t *Twin) closeProxy(id string) {
	t.mu.Lock()
	p := t.fleet.proxies[id]
	delete(t.fleet.proxies, id)
	t.mu.Unlock()
	if p == nil {
		return
	}
	if r := t.fleet.redirect; r != nil {
		if a, ok := p.Addr().(*net.TCPAddr); ok {
			if err := r.Off(a.Port); err != nil {
				t.log.Error().Err(err).Int(logkey.Port, a.Port).Msg("could not remove a closed branch's redirect")
			}
		}
	}
	p.Stop()
	s := p.Stats()
	t.mu.Lock()
	r := &t.fleet.retired
	r.Accepted += s.Accepted
	r.Sessions += s.Sessions
	r.Refused += s.Refused
	r.WakeErrors += s.WakeErrors
	r.Cancels += s.Cancels
	t.mu.Unlock()
}

func (t *Twin) closeProxies() {
	t.mu.Lock()
	var ids []string
	for id := range t.fleet.proxies {
		ids = append(ids, id)
	}
	t.mu.Unlock()
	for _, id := range ids {
		t.closeProxy(id)
	}
}

// wake is a branch proxy's backend: it returns the socket of the branch's
// instance, starting it first if it is suspended (or its postmaster died).
// It takes the branch's lock, so a connection arriving during a reset waits
// for it, and one arriving during a delete is refused.
func (t *Twin) wake(ctx context.Context, id string) (string, error) {
	t.mu.Lock()
	var rec *branchRecord
	for _, b := range t.branches {
		if b.ID == id {
			rec = b
			break
		}
	}
	if rec == nil {
		t.mu.Unlock()
		return "", errors.New("was deleted")
	}
	m := t.lockFor(id)
	t.mu.Unlock()
	m.Lock()
	defer m.Unlock()
	t.mu.Lock()
	gone := t.branches[rec.Name] != rec
	t.mu.Unlock()
	if gone {
		return "", errors.New("was deleted")
	}
	inst, err := t.startLocked(ctx, rec, "wake")
	if err != nil {
		return "", err
	}
	// A connection reached the proxy, so the redirect is off: after a
	// suspend that stopped nothing, or a start by another path. Turn it on.
	t.redirectOn(inst.Port)
	return socketPath(inst), nil
}

// startLocked makes the branch's instance run and records it ready: at once
// if it runs, else after claiming a running slot. Its errors complete a
// sentence beginning with the branch's name. Call with the branch's lock
// held.
func (t *Twin) startLocked(ctx context.Context, rec *branchRecord, why string) (*engine.Instance, error) {
	t.mu.Lock()
	id, name, port, state, reason := rec.ID, rec.Name, rec.Port, rec.State, rec.Error
	t.mu.Unlock()
	switch state {
	case stateReady:
		if inst, ok := t.eng.Instance(id); ok {
			return inst, nil
		}
	case api.StateSuspended:
	case api.StateFailed:
		return nil, fmt.Errorf("is failed (%s); run pgtwin branches reset %s", reason, name)
	default:
		return nil, fmt.Errorf("is %s; try again in a moment", state)
	}
	begin := time.Now()
	if err := t.prepareDiskCap(ctx, rec); err != nil {
		return nil, fmt.Errorf("could not be prepared for branches.max_changed_bytes: %w", err)
	}
	if err := t.claimSlot(ctx, id); err != nil {
		return nil, err
	}
	inst, err := t.eng.Start(ctx, id, t.branchSpec(port))
	if err == nil && state != stateReady {
		t.mu.Lock()
		err = t.updateBranch(rec, func(r *branchRecord) { r.State = stateReady })
		t.mu.Unlock()
		if err != nil {
			_ = t.eng.Stop(context.WithoutCancel(ctx), id)
		}
	}
	if err != nil {
		t.releaseSlot(id)
		t.met.wakeFailed()
		t.log.Warn().Err(err).Str(logkey.Branch, name).Str(logkey.Reason, why).Msg("branch could not be started")
		return nil, err
	}
	took := time.Since(begin)
	t.met.observeWake(took)
	t.log.Info().Str(logkey.Branch, name).Str(logkey.Reason, why).Dur(logkey.Duration, took).Msg("branch started")
	return inst, nil
}

// claimSlot counts branch id as running. When that would exceed
// branches.max_running it first suspends the least recently used branch
// that has no client connected; if every running branch has one, it fails.
func (t *Twin) claimSlot(ctx context.Context, id string) error {
	max := t.cfg.Branches.MaxRunning
	tried := map[string]bool{}
	// A client that just disconnected may take a moment to be seen gone.
	patience := time.Now().Add(capPatience)
	for {
		t.mu.Lock()
		if t.fleet.running[id] || max <= 0 || len(t.fleet.running) < max {
			t.fleet.running[id] = true
			t.fleet.upSince[id] = time.Now()
			t.mu.Unlock()
			return nil
		}
		n := len(t.fleet.running)
		victim := t.leastRecentlyUsed(id, tried)
		t.mu.Unlock()
		if victim == nil && time.Now().Before(patience) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			clear(tried)
			continue
		}
		if victim == nil {
			return refuse(ErrLimit, "%d branches are running, the limit set by branches.max_running, and each is in use or busy; "+
				"close idle connections, suspend a branch (pgtwin branches suspend NAME), or raise branches.max_running", n)
		}
		tried[victim.ID] = true
		t.evict(ctx, victim)
	}
}

// capPatience is how long a start at the running cap waits for a running
// branch to become idle before it fails.
const capPatience = 2 * time.Second

// releaseSlot stops counting branch id as running.
func (t *Twin) releaseSlot(id string) {
	t.mu.Lock()
	delete(t.fleet.running, id)
	delete(t.fleet.upSince, id)
	t.mu.Unlock()
}

// leastRecentlyUsed is the running, ready branch without client connections
// that was used least recently, other than id and those tried. Call with
// t.mu held.
func (t *Twin) leastRecentlyUsed(id string, tried map[string]bool) *branchRecord {
	type cand struct {
		rec  *branchRecord
		last time.Time
	}
	var cands []cand
	for _, b := range t.branches {
		if b.ID == id || tried[b.ID] || !t.fleet.running[b.ID] || b.State != stateReady {
			continue
		}
		last := t.fleet.upSince[b.ID]
		if p := t.fleet.proxies[b.ID]; p != nil {
			if p.Active() > 0 {
				continue
			}
			if l := p.LastActive(); l.After(last) {
				last = l
			}
		}
		cands = append(cands, cand{b, last})
	}
	if len(cands) == 0 {
		return nil
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].last.Before(cands[j].last) })
	return cands[0].rec
}

// evict suspends rec to make room for another branch, unless it is busy
// (its lock held, or a client arrived meanwhile).
func (t *Twin) evict(ctx context.Context, rec *branchRecord) {
	t.mu.Lock()
	m := t.lockFor(rec.ID)
	p := t.fleet.proxies[rec.ID]
	t.mu.Unlock()
	if !m.TryLock() {
		return
	}
	defer m.Unlock()
	stop := func() error { return t.suspendLocked(ctx, rec, "room for another branch (branches.max_running)") }
	var err error
	if p != nil {
		_, err = p.SuspendIdle(0, stop)
	} else {
		err = stop()
	}
	if err != nil {
		t.log.Error().Err(err).Str(logkey.Branch, rec.Name).Msg("could not suspend branch to make room")
	}
}

// suspendLocked records the branch suspended, then stops its instance. Call
// with the branch's lock held.
func (t *Twin) suspendLocked(ctx context.Context, rec *branchRecord, why string) error {
	t.mu.Lock()
	if t.branches[rec.Name] != rec || rec.State != stateReady {
		t.mu.Unlock()
		return nil
	}
	err := t.updateBranch(rec, func(r *branchRecord) { r.State = api.StateSuspended })
	id, name := rec.ID, rec.Name
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if err := t.eng.Stop(ctx, id); err != nil {
		t.mu.Lock()
		if uerr := t.updateBranch(rec, func(r *branchRecord) { r.State = stateReady }); uerr != nil {
			t.log.Error().Err(uerr).Str(logkey.Branch, name).Msg("could not record branch ready again")
		}
		t.mu.Unlock()
		return fmt.Errorf("suspend %s: %w", name, err)
	}
	t.releaseSlot(id)
	t.log.Info().Str(logkey.Branch, name).Str(logkey.Reason, why).Msg("branch suspended")
	return nil
}
