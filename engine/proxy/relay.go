package proxy

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// relayBuf is the size of a loop's read buffer: a short query's round trip
// fits many times over, and COPY moves in large reads.
const relayBuf = 32 << 10

// relay is one session's pair of sockets, served by an event loop (see
// loop) as haproxy serves them: level-triggered epoll, one read and one
// write per message, and a direction whose peer cannot take more stops
// reading until the peer is writable again.
//
// Go's netpoller costs more per message, and for short queries that is most
// of a proxy's cost: io.Copy reads again after every read only to see EAGAIN
// before parking; splice moves each few-byte message through a pipe in two
// more system calls; and every readiness goes through the poller thread and
// the scheduler, which wakes a second thread to spin. So the sockets are
// taken out of the netpoller (dup'd, then the Go connections closed, which
// unregisters them).
//
// All fields but done are owned by the loop and used under its mu.
type relay struct {
	l              *loop
	client, server int // the relay's own descriptors; -1 once closed
	up, down       direction
	masks          [2]uint32 // the client's and the server's epoll events
	drainUntil     time.Time
	ended          bool
	err            error
	done           chan struct{} // closed once the session is over
}

// direction is one way of the relay.
type direction struct {
	src, dst int
	open     bool   // src may still send
	pending  []byte // read from src, not yet written to dst: a tail of held
	held     []byte // storage for pending
}

// newRelay takes over both connections: on success they are closed and a
// loop owns their sockets.
func newRelay(client *net.TCPConn, server *net.UnixConn) (*relay, error) {
	r := &relay{client: -1, server: -1, done: make(chan struct{})}
	var err error
	if r.client, err = dupConn(client); err != nil {
		return nil, err
	}
	if r.server, err = dupConn(server); err != nil {
		unix.Close(r.client)
		return nil, err
	}
	r.up = direction{src: r.client, dst: r.server, open: true}
	r.down = direction{src: r.server, dst: r.client, open: true}
	if err := loops.add(r); err != nil {
		unix.Close(r.client)
		unix.Close(r.server)
		return nil, err
	}
	client.Close()
	server.Close()
	return r, nil
}

// dupConn duplicates a connection's socket (it stays non-blocking).
func dupConn(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup socket: %w", derr)
	}
	return nfd, nil
}

// wait returns once the session is over.
func (r *relay) wait() error {
	<-r.done
	return r.err
}

// stop ends the session now; it may be called at any time, more than once.
func (r *relay) stop() {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if !r.ended {
		l.finish(r, nil)
	}
}

// handle acts on one epoll event of one of the session's sockets.
//
// The instance ending the session FINs the client after its last bytes; the
// client then gets drainTimeout to stop sending, what it sends is dropped,
// so that unread input does not turn the close into a reset that could
// discard the last message. A client ending its side passes the FIN on and
// the instance's answers still reach it (half-close).
func (r *relay) handle(fd int, events uint32) {
	l := r.l
	for _, d := range []*direction{&r.up, &r.down} {
		if fd == d.dst && len(d.pending) > 0 && events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			if err := d.flush(); err != nil {
				l.finish(r, err)
				return
			}
		}
		if fd == d.src && d.open && len(d.pending) == 0 && events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			eof, err := d.pump(l.buf, d == &r.up && !r.down.open)
			if err != nil {
				if d == &r.up {
					l.finish(r, err) // the client is gone: so is the session
					return
				}
				eof = true
			}
			if eof && r.closed(d) {
				return
			}
		}
	}
	if err := r.rearm(); err != nil {
		l.finish(r, err)
	}
}

// closed handles the end of one direction's input and reports whether the
// session ended with it.
func (r *relay) closed(d *direction) bool {
	l := r.l
	d.open = false
	if d == &r.up {
		if !r.down.open {
			l.finish(r, nil)
			return true
		}
		unix.Shutdown(r.server, unix.SHUT_WR)
		return false
	}
	// Nothing goes to the instance any more: its socket closes now.
	unix.Shutdown(r.client, unix.SHUT_WR)
	delete(l.relays, int32(r.server))
	unix.Close(r.server)
	r.server, r.up.dst, r.up.pending = -1, -1, nil
	if !r.up.open {
		l.finish(r, nil)
		return true
	}
	r.drainUntil = time.Now().Add(drainTimeout)
	l.draining[r] = struct{}{}
	return false
}

// rearm asks epoll for what each socket can do next: readable while its
// direction is open and has nothing pending, writable while the other
// direction has something pending for it. A socket that can do neither
// leaves the epoll set, which would otherwise report a hang-up on it (the
// instance closed with its last bytes still to read, say) again and again.
func (r *relay) rearm() error {
	for i, fd := range [2]int{r.client, r.server} {
		if fd < 0 {
			continue
		}
		var want uint32
		for _, d := range []*direction{&r.up, &r.down} {
			if fd == d.src && d.open && len(d.pending) == 0 {
				want |= unix.EPOLLIN
			}
			if fd == d.dst && len(d.pending) > 0 {
				want |= unix.EPOLLOUT
			}
		}
		if want == r.masks[i] {
			continue
		}
		op := unix.EPOLL_CTL_MOD
		switch {
		case want == 0:
			op = unix.EPOLL_CTL_DEL
		case r.masks[i] == 0:
			op = unix.EPOLL_CTL_ADD
		}
		r.masks[i] = want
		ev := unix.EpollEvent{Events: want, Fd: int32(fd)}
		if err := unix.EpollCtl(r.l.ep, op, fd, &ev); err != nil {
			return fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	return nil
}

// pump reads once from src into buf and writes it on (or drops it, when
// discard); level-triggered epoll reports the socket again if a read left
// data. What dst does not take is kept until it is writable.
func (d *direction) pump(buf []byte, discard bool) (eof bool, err error) {
	n, err := unix.Read(d.src, buf)
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return false, nil
	case err != nil:
		return false, err
	case n == 0:
		return true, nil
	case discard:
		return false, nil
	}
	d.pending = buf[:n]
	err = d.flush()
	if len(d.pending) > 0 {
		d.held = append(d.held[:0], d.pending...)
		d.pending = d.held
	}
	return false, err
}

// flush writes what it can of pending; EAGAIN leaves the rest for EPOLLOUT.
func (d *direction) flush() error {
	for len(d.pending) > 0 {
		n, err := unix.Write(d.dst, d.pending)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return nil
		case err != nil:
			d.pending = nil
			return fmt.Errorf("write: %w", err)
		}
		d.pending = d.pending[n:]
	}
	d.pending = nil
	return nil
}
