// Package startstop is the one start/stop shape of pgtwin's long-running
// services, after River's: Start while started is an error, Stop before
// Start or twice is safe, and Stop returns once everything Start began has
// ended. A service embeds a Base (or holds one) and does
//
//	func (s *S) Start(ctx context.Context) error {
//		ctx, err := s.base.Begin(ctx)
//		if err != nil {
//			return err
//		}
//		s.base.Go(func() { s.loop(ctx) })
//		return nil
//	}
//
//	func (s *S) Stop() { s.base.Stop() }
package startstop

import (
	"context"
	"errors"
	"sync"
)

// ErrStarted is returned by Begin while the service runs.
var ErrStarted = errors.New("already started")

// Base tracks whether a service runs and the goroutines it started. The
// zero value is ready.
type Base struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{} // closed by Stop once everything has ended
	wg     sync.WaitGroup
}

// Begin marks the service started. The returned context keeps ctx's values
// but not its deadline or cancellation (a request's context must not end
// a daemon's loop); Stop cancels it. After Stop, Begin may start the
// service again.
func (b *Base) Begin(ctx context.Context) (context.Context, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		return nil, ErrStarted
	}
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.done = make(chan struct{})
	return ctx, nil
}

// Go runs fn in a goroutine that Stop waits for, and reports whether it
// did: once Stop has begun (or before Begin) fn is not run, so nothing
// outlives Stop.
func (b *Base) Go(fn func()) bool {
	b.mu.Lock()
	if b.cancel == nil {
		b.mu.Unlock()
		return false
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		fn()
	}()
	return true
}

// Started reports whether Begin was called and Stop was not.
func (b *Base) Started() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cancel != nil
}

// Stop cancels the context Begin returned and waits for every goroutine Go
// started. It reports whether the service was running; a Stop racing
// another waits for it too.
func (b *Base) Stop() bool {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.cancel = nil
	b.mu.Unlock()
	if cancel == nil {
		if done != nil {
			<-done
		}
		return false
	}
	cancel()
	b.wg.Wait()
	close(done)
	return true
}
