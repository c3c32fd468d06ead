package twinsync

import (
	"context"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/anonymize"
)

// TestLogicalLagWhileHalted: once apply has stopped on a fault that needs a
// person (here: an added column of unclassified PII), sync status still
// reads the slot from the source, so lag and retained WAL grow while the
// source writes instead of showing the last value from when it streamed
// (issue 14: "Lag: 0 B (0s)" with the slot 12 MB behind).
func TestLogicalLagWhileHalted(t *testing.T) {
	ctx := context.Background()
	e := newLogicalEnv(t, 50)
	e.policy = anonymize.PolicyFail
	for k, v := range map[string]string{"public.addresses.city": "keep", "public.addresses.postcode": "keep",
		"public.customers.profile": "keep", "public.ri_index.note": "keep"} {
		r, err := anonymize.ParseRules(map[string]map[string]any{k: {"transform": v}})
		if err != nil {
			t.Fatal(err)
		}
		e.rules[k] = r[k]
	}
	f := e.follower()
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	waitState(t, f, stateStreaming, 2*time.Minute)

	e.src.Exec(t, "app", `ALTER TABLE customers ADD COLUMN national_id text;
		UPDATE customers SET national_id = 'AB' || id WHERE id <= 5;`)
	deadline := time.Now().Add(time.Minute)
	for f.Status().State == stateStreaming && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if st := f.Status(); st.State == stateStreaming {
		t.Fatalf("apply did not stop on an unclassified column: %+v", st)
	}
	e.src.Exec(t, "app", `CREATE TABLE filler AS SELECT i, repeat('x', 200) AS pad FROM generate_series(1, 20000) i`)
	const behind = 2 << 20
	deadline = time.Now().Add(30 * time.Second)
	var st followerStatus
	for time.Now().Before(deadline) {
		st = f.Status()
		if st.LagBytes != nil && *st.LagBytes > behind {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.LagBytes == nil || *st.LagBytes <= behind {
		t.Fatalf("state %s: lag %v bytes after the source wrote about 5 MB, want more than %d", st.State, deref(st.LagBytes), behind)
	}
	if st.RetainedWAL == nil || *st.RetainedWAL < *st.LagBytes {
		t.Errorf("retained WAL %v, want at least the lag %d", deref(st.RetainedWAL), *st.LagBytes)
	}
	if st.LagSeconds == nil || *st.LagSeconds <= 0 {
		t.Errorf("lag seconds %v while %s and behind, want more than 0", st.LagSeconds, st.State)
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
