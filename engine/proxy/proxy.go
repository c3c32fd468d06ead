package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// ErrAddrInUse is returned by Start when the listen address is taken.
var ErrAddrInUse = errors.New("address already in use")

// Backend is what a proxy needs from whoever owns the instance.
type Backend interface {
	// Wake makes sure the instance runs and returns its unix socket path
	// (…/.s.PGSQL.NNNN) once it accepts connections. Concurrent callers during one start must all wait
	// for that one start; NewWaker does that for a plain start function. A
	// Wake that races with a stop must return once the instance runs again,
	// not while it shuts down.
	Wake(ctx context.Context) (socketPath string, err error)
}

// Options configure a Proxy. Addr and Backend are required.
type Options struct {
	Addr    string // ip:port to listen on
	Backend Backend
	Logger  zerolog.Logger
	// RefuseUser is the instance's superuser role: logins as it are refused.
	RefuseUser string
	// RefuseAlso are more roles the daemon keeps for itself (the scan
	// role), refused the same way: only the daemon logs in as them, never
	// over a branch URL.
	RefuseAlso []string
	// OnActivity is called, synchronously and so it must be quick, whenever
	// a client connection begins or ends.
	OnActivity func()
	// Name is how error messages sent to clients name what is behind the
	// proxy, e.g. `branch "dev"`. Default "instance".
	Name string
	// StartupTimeout bounds reading a client's first packets. Default 10s.
	StartupTimeout time.Duration
	// WakeTimeout bounds how long one client waits for Backend.Wake.
	// Default 2m.
	WakeTimeout time.Duration
	// CloseSessionsOnStop makes Stop close open client connections and wait
	// for them; otherwise they run on until either side ends them.
	CloseSessionsOnStop bool
	// Bypass, if set, is a kernel path that takes new connections past the
	// proxy, straight to the running instance. Its clients count as active,
	// and SuspendIdle closes it before it stops the instance.
	Bypass Bypass
}

// Bypass is a kernel redirect of the proxy's address to the running
// instance (engine.Redirect, for one port).
type Bypass interface {
	// Conns counts the clients connected through the bypass, including
	// those still in their TCP handshake. Unless fresh, a count a few tens
	// of milliseconds old will do.
	Conns(fresh bool) int
	// Off sends new connections to the proxy again.
	Off() error
	// On sends new connections past the proxy again.
	On() error
}

// Proxy is one listener relaying PostgreSQL clients to one instance.
type Proxy struct {
	opts Options
	log  zerolog.Logger

	mu         sync.Mutex
	backend    Backend
	ln         net.Listener
	started    bool
	stopped    bool
	sessions   map[*session]struct{}
	acceptDone chan struct{}
	ctx        context.Context // ends when sessions must end
	cancel     context.CancelFunc
	unwatch    func() bool // stops watching Start's ctx

	// gate orders wakes after a stop made through SuspendIdle: sessions hold
	// it shared while they wake the instance.
	gate sync.RWMutex

	wg         sync.WaitGroup // open sessions
	active     atomic.Int64
	lastActive atomic.Int64 // unix nanoseconds
	// socket is the path the last Wake returned: cancel requests go there
	// without waking anything, since a cancel for a stopped instance is moot.
	socket atomic.Pointer[string]
	stats  struct{ accepted, sessions, refused, wakeErrors, cancels atomic.Int64 }
}

// Stats are cumulative counts since New, for metrics.
type Stats struct {
	Accepted   int64 // TCP connections accepted
	Sessions   int64 // connections relayed to the instance
	Refused    int64 // superuser logins refused
	WakeErrors int64 // connections answered with "could not be started" or "not reachable"
	Cancels    int64 // cancel requests received
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted:   p.stats.accepted.Load(),
		Sessions:   p.stats.sessions.Load(),
		Refused:    p.stats.refused.Load(),
		WakeErrors: p.stats.wakeErrors.Load(),
		Cancels:    p.stats.cancels.Load(),
	}
}

// session is one client connection and, once dialed, its server connection.
type session struct {
	client *net.TCPConn
	server *net.UnixConn
	relay  *relay // once the session's sockets are handed to a relay
}

// New returns a proxy that listens once started.
func New(opts Options) *Proxy {
	if opts.Name == "" {
		opts.Name = "instance"
	}
	if opts.StartupTimeout <= 0 {
		opts.StartupTimeout = 10 * time.Second
	}
	if opts.WakeTimeout <= 0 {
		opts.WakeTimeout = 2 * time.Minute
	}
	p := &Proxy{
		opts:     opts,
		backend:  opts.Backend,
		sessions: map[*session]struct{}{},
	}
	p.log = opts.Logger.With().Str(logkey.Component, "proxy").Logger()
	p.lastActive.Store(time.Now().UnixNano())
	return p
}

// Start binds the listener and serves connections until Stop, or until ctx
// ends. A taken address is ErrAddrInUse.
func (p *Proxy) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.stopped {
		return fmt.Errorf("proxy %s: already started or stopped (a Proxy runs once)", p.opts.Addr)
	}
	if p.backend == nil {
		return fmt.Errorf("proxy %s: no backend", p.opts.Addr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", p.opts.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listen %s: %w", p.opts.Addr, ErrAddrInUse)
		}
		return fmt.Errorf("listen %s: %w", p.opts.Addr, err)
	}
	p.ln = ln
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		p.log = p.log.With().Int(logkey.Port, a.Port).Logger()
	}
	p.started = true
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.acceptDone = make(chan struct{})
	p.lastActive.Store(time.Now().UnixNano())
	go p.acceptLoop(ln)
	p.unwatch = context.AfterFunc(ctx, p.Stop)
	p.log.Debug().Msg("proxy listening")
	return nil
}

// Addr is the bound address (useful when Options.Addr had port 0), or nil
// before Start.
func (p *Proxy) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

// Stop closes the listener; with CloseSessionsOnStop it also closes open
// sessions and waits for them. Calling it again does nothing.
func (p *Proxy) Stop() {
	p.mu.Lock()
	if !p.started || p.stopped {
		p.stopped = true
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.unwatch() // else a long-lived ctx would keep every stopped proxy alive
	p.ln.Close()
	closeSessions := p.opts.CloseSessionsOnStop
	if closeSessions {
		p.cancel()
		for s := range p.sessions {
			s.close()
		}
	}
	p.mu.Unlock()

	<-p.acceptDone
	if closeSessions {
		p.wg.Wait()
	}
	p.log.Debug().Msg("proxy stopped")
}

// SetBackend replaces the backend for connections accepted from now on.
func (p *Proxy) SetBackend(b Backend) {
	p.mu.Lock()
	p.backend = b
	p.mu.Unlock()
	p.socket.Store(nil)
}

// Active is the number of open client connections, including those waiting
// for the instance to start and those that went through the Bypass.
func (p *Proxy) Active() int {
	n := int(p.active.Load())
	if p.opts.Bypass != nil {
		if d := p.opts.Bypass.Conns(false); d > 0 {
			// Bypassed clients are seen only when counted: idleness starts
			// from the last count that saw one.
			p.lastActive.Store(time.Now().UnixNano())
			n += d
		}
	}
	return n
}

// LastActive is when a client connection last began or ended (or when the
// proxy started, if none has).
func (p *Proxy) LastActive() time.Time { return time.Unix(0, p.lastActive.Load()) }

// SuspendIdle runs stop (which stops the instance) if no client connection is
// open and none began or ended within idle, and reports whether it ran.
// Connections arriving meanwhile wait for stop to return before they wake
// the instance, so none of them is cut by a stop that raced with it.
func (p *Proxy) SuspendIdle(idle time.Duration, stop func() error) (bool, error) {
	if !p.gate.TryLock() {
		return false, nil // a client is waking the instance
	}
	defer p.gate.Unlock()
	if p.Active() > 0 || time.Since(p.LastActive()) < idle {
		return false, nil
	}
	if b := p.opts.Bypass; b != nil {
		// New connections must come here before the instance stops; one
		// that went past just before that keeps the instance running.
		if err := b.Off(); err != nil {
			return false, err
		}
		if b.Conns(true) > 0 {
			p.lastActive.Store(time.Now().UnixNano())
			return false, b.On()
		}
	}
	return true, stop()
}

func (p *Proxy) acceptLoop(ln net.Listener) {
	defer close(p.acceptDone)
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, rather than spin or give up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn().Err(err).Dur(logkey.Duration, backoff).Msg("accept failed; retrying")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s := &session{client: conn.(*net.TCPConn)}
		if !p.begin(s) {
			conn.Close()
			continue
		}
		go p.serve(s)
	}
}

// begin registers a session, unless the proxy is closing its sessions.
func (p *Proxy) begin(s *session) bool {
	p.mu.Lock()
	if p.stopped && p.opts.CloseSessionsOnStop {
		p.mu.Unlock()
		return false
	}
	p.sessions[s] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	p.active.Add(1)
	p.stats.accepted.Add(1)
	p.touch()
	return true
}

func (p *Proxy) end(s *session) {
	s.close()
	p.mu.Lock()
	delete(p.sessions, s)
	p.mu.Unlock()
	// LastActive moves before Active drops, so a sweeper that sees no
	// sessions never pairs that with the time the last one began.
	p.touch()
	p.active.Add(-1)
	p.wg.Done()
}

// attach records the server connection so Stop can close it; false if the
// session was closed meanwhile.
func (p *Proxy) attach(s *session, server *net.UnixConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped && p.opts.CloseSessionsOnStop {
		return false
	}
	s.server = server
	return true
}

// takeOver hands the session's sockets to a relay; nil without error if the
// session was closed meanwhile.
func (p *Proxy) takeOver(s *session) (*relay, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped && p.opts.CloseSessionsOnStop {
		return nil, nil
	}
	r, err := newRelay(s.client, s.server)
	if err != nil {
		return nil, err
	}
	s.relay = r
	return r, nil
}

func (p *Proxy) touch() {
	p.lastActive.Store(time.Now().UnixNano())
	if p.opts.OnActivity != nil {
		p.opts.OnActivity()
	}
}

func (p *Proxy) currentBackend() Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.backend
}

// close is called with or without p.mu; closing a net.Conn twice is harmless.
func (s *session) close() {
	if s.relay != nil {
		s.relay.stop()
	}
	s.client.Close()
	if s.server != nil {
		s.server.Close()
	}
}
