package proxy_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/engine/proxy"
)

func TestWakerSharesOneStart(t *testing.T) {
	var starts atomic.Int32
	release := make(chan struct{})
	w := proxy.NewWaker(func(ctx context.Context) (string, error) {
		starts.Add(1)
		<-release
		return "/run/sock", nil
	}, 0)

	// A caller that gives up does not cancel the start for the others.
	quitter, quit := context.WithCancel(context.Background())
	quitErr := make(chan error, 1)
	go func() { _, err := w.Wake(quitter); quitErr <- err }()
	time.Sleep(10 * time.Millisecond)

	var wg sync.WaitGroup
	paths := make(chan string, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := w.Wake(context.Background())
			if err != nil {
				t.Error(err)
			}
			paths <- p
		}()
	}
	quit()
	if err := <-quitErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	close(release)
	wg.Wait()
	close(paths)
	for p := range paths {
		if p != "/run/sock" {
			t.Fatalf("path %q", p)
		}
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("%d starts for 51 concurrent callers, want 1", n)
	}

	// Once a start is over, the next Wake calls start again (it may have failed,
	// or the instance may have been stopped since).
	if _, err := w.Wake(context.Background()); err != nil || starts.Load() != 2 {
		t.Fatalf("later wake: err=%v starts=%d", err, starts.Load())
	}
}

func TestWakerTimeout(t *testing.T) {
	w := proxy.NewWaker(func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}, 50*time.Millisecond)
	if _, err := w.Wake(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wake: %v; want the start's timeout", err)
	}
}
