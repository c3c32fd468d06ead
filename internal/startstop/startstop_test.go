package startstop

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestStopBeforeStartAndTwice(t *testing.T) {
	var b Base
	if b.Stop() {
		t.Fatal("Stop before Start reported a running service")
	}
	ctx, err := b.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !b.Started() {
		t.Fatal("not Started after Begin")
	}
	if !b.Stop() {
		t.Fatal("the first Stop did not stop a running service")
	}
	if ctx.Err() == nil {
		t.Fatal("Stop did not cancel the service's context")
	}
	if b.Stop() || b.Started() {
		t.Fatal("a second Stop found the service running")
	}
	if b.Go(func() { t.Error("a goroutine ran after Stop") }) {
		t.Fatal("Go after Stop reported it started a goroutine")
	}
}

func TestStartTwiceIsAnError(t *testing.T) {
	var b Base
	if _, err := b.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Begin(context.Background()); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Begin = %v, want ErrStarted", err)
	}
	b.Stop()
	// Stopped, it may start again (a logical resync restarts the follower).
	if _, err := b.Begin(context.Background()); err != nil {
		t.Fatalf("Begin after Stop = %v", err)
	}
	b.Stop()
}

// The service's context outlives the caller's: a Start under a request's
// context keeps running when the request ends, until Stop.
func TestContextIsTheServices(t *testing.T) {
	var b Base
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	ctx, err := b.Begin(parent)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if ctx.Err() != nil {
		t.Fatal("the caller's cancel ended the service's context")
	}
	if ctx.Value(ctxKey{}) != "v" {
		t.Fatal("the caller's values are lost")
	}
	b.Stop()
}

type ctxKey struct{}

// Stop returns only when every goroutine has ended, also for a second
// Stop that raced the first.
func TestStopWaitsForGoroutines(t *testing.T) {
	var b Base
	ctx, err := b.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ended atomic.Int32
	for range 3 {
		b.Go(func() {
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // cleanup after the cancel
			ended.Add(1)
		})
	}
	second := make(chan int32)
	go func() {
		time.Sleep(5 * time.Millisecond)
		b.Stop()
		second <- ended.Load()
	}()
	b.Stop()
	if n := ended.Load(); n != 3 {
		t.Fatalf("Stop returned with %d of 3 goroutines ended", n)
	}
	if n := <-second; n != 3 {
		t.Fatalf("a racing Stop returned with %d of 3 goroutines ended", n)
	}
}
