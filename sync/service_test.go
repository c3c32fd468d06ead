package twinsync

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/anonymize"
)

// Each finished run tells ServiceConfig.Finished its duration and outcome:
// the daemon's sync duration metric counts on it.
func TestServiceReportsFinishedRuns(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, 50)
	_, tgt := newTarget(t)
	log, logs := testLogger(t)

	type report struct {
		d   time.Duration
		err error
	}
	var mu sync.Mutex
	var got []report
	run := func(policy string) error {
		t.Helper()
		svc, err := newService(serviceConfig{
			Source: source{URL: src.ConnString("app")}, Policy: policy, Key: []byte("0123456789abcdef0123456789abcdef"),
			Replace: func(ctx context.Context, fill func(context.Context, target) error) (string, error) {
				return "snap", fill(ctx, tgt)
			},
			Backoff:  backoff{Initial: 10 * time.Millisecond, Attempts: 2},
			TempDir:  t.TempDir(),
			Log:      log,
			Finished: func(d time.Duration, err error) { mu.Lock(); got = append(got, report{d, err}); mu.Unlock() },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer svc.Stop()
		return svc.Trigger().Wait(ctx)
	}

	// The shop's email, name and phone columns have no rule: "fail" stops
	// the run at the plan.
	failErr := run(anonymize.PolicyFail)
	if failErr == nil {
		t.Fatalf("a run with unclassified PII and policy fail succeeded\nlog:\n%s", logs)
	}
	if err := run(anonymize.PolicyMask); err != nil {
		t.Fatalf("run with policy mask: %v\nlog:\n%s", err, logs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("Finished was called %d times for 2 runs: %+v", len(got), got)
	}
	if !errors.Is(got[0].err, failErr) {
		t.Errorf("the failed run reported err %v; the run returned %v", got[0].err, failErr)
	}
	if got[1].err != nil || got[1].d <= 0 {
		t.Errorf("the good run reported (%v, %v); want a positive duration and no error", got[1].d, got[1].err)
	}
}
