package proxy

import (
	"context"
	"sync"
	"time"
)

// Waker makes a start function safe for the stampede of first connections to
// a stopped instance: callers that arrive while a start is in flight wait for
// that start and share its result instead of starting again. A Waker is a
// Backend.
type Waker struct {
	start   func(ctx context.Context) (string, error)
	timeout time.Duration

	mu   sync.Mutex
	call *wakeCall
}

type wakeCall struct {
	done chan struct{}
	path string
	err  error
}

// NewWaker wraps start, which must return the socket path at once when the
// instance already runs. timeout bounds one start (0: none); the start runs
// detached from the caller that triggered it, because the callers waiting on
// it outlive that one.
func NewWaker(start func(ctx context.Context) (socketPath string, err error), timeout time.Duration) *Waker {
	return &Waker{start: start, timeout: timeout}
}

// Wake joins the start in flight or begins one. A caller whose ctx ends stops
// waiting; the start goes on for the others.
func (w *Waker) Wake(ctx context.Context) (string, error) {
	w.mu.Lock()
	c := w.call
	if c == nil {
		c = &wakeCall{done: make(chan struct{})}
		w.call = c
		go w.run(context.WithoutCancel(ctx), c)
	}
	w.mu.Unlock()

	select {
	case <-c.done:
		return c.path, c.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (w *Waker) run(ctx context.Context, c *wakeCall) {
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	c.path, c.err = w.start(ctx)
	// Forget the call before releasing its waiters: the next Wake after a
	// failure, or after the instance was stopped again, must start afresh.
	w.mu.Lock()
	w.call = nil
	w.mu.Unlock()
	close(c.done)
}
