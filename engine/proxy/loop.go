package proxy

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// maxLoops caps how many event loops relay sessions; 0 means loopLimit's.
var maxLoops = 0

// loopLimit is how many loops may run: one fewer than GOMAXPROCS, at least
// one, so that a P stays idle while the loops wait in epoll_wait.
//
// Go's scheduler counts a thread in a system call as holding its P. When no
// P is idle, sysmon takes the P of a thread that has been in a syscall for
// one of its ticks (20 µs) and starts another thread to spin for work with
// it; the loop, back from epoll_wait, finds no P and parks its thread while
// the spinning one picks it up; and sysmon keeps its 20 µs pace as long as
// it retakes. With GOMAXPROCS loops, perf at -S -c4 showed sysmon at 18% of
// the proxy's CPU (its retakes and hand-offs included) and the loop's side
// (exitsyscallNoP, stopm) at another 4%. With a P idle, sysmon leaves a P in
// a syscall alone (see also yieldEvery). The daemon raises GOMAXPROCS by one
// (SpareP), so that this is a loop per CPU: a single loop, every session in
// one epoll set, costs less CPU per transaction, but gets one thread's share
// of busy CPUs.
func loopLimit() int {
	if maxLoops > 0 {
		return maxLoops
	}
	return max(1, runtime.GOMAXPROCS(0)-1)
}

// yieldEvery is how often a busy loop passes through the scheduler. Sysmon
// preempts a goroutine that has not been rescheduled for 10 ms, and for one
// in a syscall that means taking its P even while another P is idle; a loop
// never reschedules otherwise, so sysmon went on retaking its P now and
// then and, each time, polled every 20 µs for a while (9% of the proxy's
// CPU at -S -c4, with a P idle). A Gosched wakes a thread to spin (5% at one
// a millisecond, 2% at one each 5 ms, with sysmon then at 0.6%), so it
// comes every 5 ms, within sysmon's 10. 0 turns it off (for the benchmark).
var yieldEvery = yieldPeriod

const yieldPeriod = 5 * time.Millisecond

// loops are the event loops relaying every proxy's sessions. A loop starts
// when a session needs one and ends when it has none left.
var loops loopPool

type loopPool struct {
	mu    sync.Mutex
	loops []*loop
}

// loop is one thread blocked in one epoll set holding many sessions'
// sockets: when several sessions are busy at once, one epoll_wait collects
// all their readiness, so a message costs a share of a wake-up, one read and
// one write.
type loop struct {
	ep, ev int    // epoll set; eventfd that wakes it to retire
	buf    []byte // the read buffer every session of the loop shares

	yieldEvery time.Duration // yieldEvery when the loop began

	n  atomic.Int32 // sessions; changes under mu, read under the pool's mu
	mu sync.Mutex   // held while the loop handles events
	// relays holds each session under both of its descriptors.
	relays   map[int32]*relay
	draining map[*relay]struct{}
	dead     bool
}

// add hands r to the loop with the fewest sessions, starting a new loop
// while fewer than maxLoops run and all are busy.
func (p *loopPool) add(r *relay) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	limit := loopLimit()
	var l *loop
	for _, c := range p.loops {
		if l == nil || c.n.Load() < l.n.Load() {
			l = c
		}
	}
	if l == nil || (l.n.Load() > 0 && len(p.loops) < limit) {
		nl, err := newLoop()
		switch {
		case err == nil:
			p.loops = append(p.loops, nl)
			l = nl
			go nl.run()
		case l == nil:
			return err
		}
		// Else out of descriptors, say: share a running loop.
	}
	return l.add(r)
}

// newLoop is called with the pool's lock held.
func newLoop() (*loop, error) {
	l := &loop{ep: -1, buf: make([]byte, relayBuf), yieldEvery: yieldEvery, relays: map[int32]*relay{}, draining: map[*relay]struct{}{}}
	var err error
	if l.ev, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		unix.Close(l.ev)
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.ev)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, l.ev, &ev); err != nil {
		unix.Close(l.ev)
		unix.Close(l.ep)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return l, nil
}

// add registers both of r's sockets, under mu so that the loop sees none of
// their events before it knows the session.
func (l *loop) add(r *relay) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, fd := range []int{r.client, r.server} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			if i == 1 {
				unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, r.client, nil)
			}
			return fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	r.l = l
	r.masks = [2]uint32{unix.EPOLLIN, unix.EPOLLIN}
	l.relays[int32(r.client)] = r
	l.relays[int32(r.server)] = r
	l.n.Add(1)
	return nil
}

// run serves the loop's sessions until it has none.
func (l *loop) run() {
	events := make([]unix.EpollEvent, 64)
	timeout := -1
	yielded := time.Now()
	for {
		if l.yieldEvery > 0 {
			if now := time.Now(); now.Sub(yielded) >= l.yieldEvery {
				runtime.Gosched()
				yielded = now
			}
		}
		n, err := unix.EpollWait(l.ep, events, timeout)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			l.fail(fmt.Errorf("epoll_wait: %w", err))
			return
		}
		l.mu.Lock()
		for _, e := range events[:n] {
			if e.Fd == int32(l.ev) {
				var b [8]byte
				unix.Read(l.ev, b[:])
				continue
			}
			// A session that ended since the batch was collected is gone
			// from relays. If a new session reused its descriptor, the
			// stale event only makes a read or write find nothing to do.
			if r := l.relays[e.Fd]; r != nil {
				r.handle(int(e.Fd), e.Events)
			}
		}
		timeout = l.expire()
		idle := l.n.Load() == 0
		l.mu.Unlock()
		if idle && l.retire() {
			return
		}
	}
}

// expire ends the sessions whose client did not stop sending within
// drainTimeout of the instance's close, and returns the epoll_wait timeout
// until the next such deadline, in milliseconds (-1: none).
func (l *loop) expire() int {
	if len(l.draining) == 0 {
		return -1
	}
	now := time.Now()
	timeout := -1
	for r := range l.draining {
		left := r.drainUntil.Sub(now)
		if left <= 0 {
			l.finish(r, nil)
			continue
		}
		if ms := int(left/time.Millisecond) + 1; timeout < 0 || ms < timeout {
			timeout = ms
		}
	}
	return timeout
}

// retire ends the loop if it still has no session; the pool's lock keeps
// add from choosing it meanwhile.
func (l *loop) retire() bool {
	loops.mu.Lock()
	defer loops.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n.Load() > 0 {
		return false
	}
	l.close()
	return true
}

// fail ends every session of a loop whose epoll set broke.
func (l *loop) fail(err error) {
	loops.mu.Lock()
	defer loops.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.relays {
		if !r.ended {
			l.finish(r, err)
		}
	}
	l.close()
}

// close is called with the pool's and the loop's locks held.
func (l *loop) close() {
	l.dead = true
	loops.loops = slices.DeleteFunc(loops.loops, func(c *loop) bool { return c == l })
	unix.Close(l.ep)
	unix.Close(l.ev)
}

// wake makes epoll_wait return; called with mu held, so the loop cannot
// have closed the eventfd.
func (l *loop) wake() {
	if !l.dead {
		one := [8]byte{1}
		unix.Write(l.ev, one[:])
	}
}

// finish ends a session: its sockets close (which takes them out of the
// epoll set) and its waiter learns err. Called with mu held.
func (l *loop) finish(r *relay, err error) {
	r.ended = true
	r.err = err
	for _, fd := range []*int{&r.client, &r.server} {
		if *fd >= 0 {
			delete(l.relays, int32(*fd))
			unix.Close(*fd)
			*fd = -1
		}
	}
	delete(l.draining, r)
	if l.n.Add(-1) == 0 {
		l.wake() // to retire, if no session comes
	}
	close(r.done)
}
