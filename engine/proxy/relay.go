package proxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// relayBuf is the per-direction buffer: a short query's round trip fits many
// times over, and COPY moves in large reads.
const relayBuf = 32 << 10

// relay moves a session's bytes on a thread of its own, blocked in its own
// epoll set, as haproxy's event loop does: each message costs one wake-up,
// one read and one write.
//
// Go's netpoller costs more per message, and for short queries that is most
// of a proxy's cost: io.Copy reads again after every read only to see EAGAIN
// before parking; splice moves each few-byte message through a pipe in two
// more system calls; and every readiness goes through the poller thread and
// the scheduler, which wakes a second thread to spin. So the sockets are
// taken out of the netpoller (dup'd, then the Go connections closed, which
// unregisters them) and served here with level-triggered epoll.
type relay struct {
	client, server int // the relay's own descriptors
	ep, ev         int // epoll set; eventfd that stop writes to

	mu     sync.Mutex
	closed bool
}

// newRelay takes over both connections: on success they are closed and the
// relay owns their sockets.
func newRelay(client *net.TCPConn, server *net.UnixConn) (*relay, error) {
	r := &relay{client: -1, server: -1, ep: -1, ev: -1}
	var err error
	if r.client, err = dupConn(client); err != nil {
		return nil, err
	}
	if r.server, err = dupConn(server); err != nil {
		r.closeFDs()
		return nil, err
	}
	if r.ev, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		r.closeFDs()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if r.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		r.closeFDs()
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	for _, fd := range []int{r.client, r.server, r.ev} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
		if err := unix.EpollCtl(r.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			r.closeFDs()
			return nil, fmt.Errorf("epoll_ctl: %w", err)
		}
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

// stop makes run return soon; it may be called at any time, more than once.
func (r *relay) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		var one = [8]byte{1}
		unix.Write(r.ev, one[:])
	}
}

func (r *relay) closeFDs() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, fd := range []*int{&r.client, &r.server, &r.ep, &r.ev} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// direction is one way of the relay.
type direction struct {
	src, dst int
	buf      []byte
	pending  []byte // read from src, not yet written to dst
	open     bool   // src may still send
}

// run relays until the session is over, then closes everything. The
// instance ending the session FINs the client after its last bytes; the
// client then gets drainTimeout to stop sending, so that unread input does
// not turn the close into a reset that could discard the last message.
func (r *relay) run() error {
	defer r.closeFDs()
	up := &direction{src: r.client, dst: r.server, buf: make([]byte, relayBuf), open: true}
	down := &direction{src: r.server, dst: r.client, buf: make([]byte, relayBuf), open: true}
	masks := map[int]uint32{r.client: unix.EPOLLIN | unix.EPOLLRDHUP, r.server: unix.EPOLLIN | unix.EPOLLRDHUP}
	var drainUntil time.Time
	events := make([]unix.EpollEvent, 4)
	for {
		timeout := -1
		if !down.open {
			left := time.Until(drainUntil)
			if left <= 0 {
				return nil
			}
			timeout = int(left/time.Millisecond) + 1
		}
		n, err := unix.EpollWait(r.ep, events, timeout)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, e := range events[:n] {
			fd := int(e.Fd)
			if fd == r.ev {
				return nil
			}
			for _, d := range []*direction{up, down} {
				if fd == d.dst && len(d.pending) > 0 && e.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
					if err := d.flush(); err != nil {
						return err
					}
				}
				if fd == d.src && d.open && len(d.pending) == 0 && e.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
					eof, err := d.pump(d == up && !down.open)
					if err != nil {
						if d == up {
							return err // the client is gone: so is the session
						}
						eof = true
					}
					if eof {
						d.open = false
						unix.Shutdown(d.dst, unix.SHUT_WR)
						if d == down {
							drainUntil = time.Now().Add(drainTimeout)
						}
						if !up.open && !down.open {
							return nil
						}
					}
				}
			}
		}
		for fd := range masks {
			want := uint32(unix.EPOLLRDHUP)
			for _, d := range []*direction{up, down} {
				if fd == d.src && d.open && len(d.pending) == 0 {
					want |= unix.EPOLLIN
				}
				if fd == d.dst && len(d.pending) > 0 {
					want |= unix.EPOLLOUT
				}
			}
			if want != masks[fd] {
				masks[fd] = want
				ev := unix.EpollEvent{Events: want, Fd: int32(fd)}
				if err := unix.EpollCtl(r.ep, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
					return fmt.Errorf("epoll_ctl: %w", err)
				}
			}
		}
	}
}

// pump reads once from src and writes it on (or drops it, when discard):
// level-triggered epoll reports the socket again if a read left data.
func (d *direction) pump(discard bool) (eof bool, err error) {
	n, err := unix.Read(d.src, d.buf)
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
	d.pending = d.buf[:n]
	return false, d.flush()
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
			return fmt.Errorf("write: %w", err)
		}
		d.pending = d.pending[n:]
	}
	d.pending = nil
	return nil
}
