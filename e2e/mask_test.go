package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/twin/api"
)

// TestMaskCommands: `mask plan` names unclassified PII and exits 1 (and a
// sync then stops before copying a row, saying which rule to add); with the
// rule it exits 0; `mask check` finds a raw email planted in a branch and
// nothing in the masked twin.
func TestMaskCommands(t *testing.T) {
	src := startShop(t, 1000)
	d := startSyncDaemon(t, src, syncOpts{without: []string{"public.customers.notes"}})

	r := d.cli(root, "mask", "plan")
	if r.code != 1 || !strings.Contains(r.stdout, "public.customers.notes") || !strings.Contains(r.stdout, "UNCLASSIFIED PII") {
		t.Fatalf("mask plan with customers.notes unclassified: want exit 1 naming the column:\n%s", r)
	}
	pj := d.cli(root, "mask", "plan", "-o", "json")
	plan := decode[api.MaskPlan](t, pj)
	if pj.code != 1 || plan.Unclassified != 1 || !strings.Contains(string(plan.Plan), `"unclassified"`) {
		t.Fatalf("mask plan -o json: exit %d, %d unclassified", pj.code, plan.Unclassified)
	}
	// Any socket user may read the plan: it holds no values.
	if r := d.cli(ensureUser(t, "e2ealice", socketGroup), "mask", "plan"); r.code != 1 || !strings.Contains(r.stdout, "public.customers.notes") {
		t.Fatalf("mask plan as a developer:\n%s", r)
	}
	for _, leak := range sampleRaw(t, src) {
		if strings.Contains(pj.stdout, leak) || strings.Contains(r.stdout, leak) {
			t.Fatalf("mask plan output shows a raw source value")
		}
	}

	// The sync stops at the plan, before any row.
	r = d.cli(root, "sync", "now", "--wait")
	if r.code != 1 {
		t.Fatalf("sync with unclassified PII: want exit 1:\n%s", r)
	}
	st := d.syncStatus(t)
	if st.State != "failed" || st.Step != "plan" || st.Rows != 0 ||
		!strings.Contains(st.LastError, "public.customers.notes") || !strings.Contains(st.LastError, `"public.customers.notes" = {`) {
		t.Fatalf("sync status after a sync stopped by the plan: %+v", st)
	}

	// With the rule: plan clean, sync, check clean.
	cfg, _ := os.ReadFile(d.Config)
	os.WriteFile(d.Config, append(cfg, []byte(fmt.Sprintf("%q = %s\n", "public.customers.notes", shopRules["public.customers.notes"]))...), 0o644)
	d.stop()
	d.start()
	if r := d.cli(root, "mask", "plan"); r.code != 0 {
		t.Fatalf("mask plan with every column covered:\n%s", r)
	}
	d.syncOK(t)
	if r := d.cli(root, "mask", "check"); r.code != 0 || !strings.Contains(r.stdout, "no PII found") {
		t.Fatalf("mask check of the masked twin:\n%s", r)
	}

	// A raw email planted in a branch is found, and shown redacted.
	a := ensureUser(t, "e2ealice", socketGroup)
	b := d.create(t, a, "leaky")
	raw := sampleRaw(t, src)[0]
	execURI(t, b.ConnectionURI, fmt.Sprintf("UPDATE customers SET notes = 'reach me at %s' WHERE id = 7", raw))
	r = d.cli(a, "mask", "check", "leaky")
	if r.code != 1 || !strings.Contains(r.stdout, "customers.notes") || !strings.Contains(r.stderr, "look like unmasked PII") {
		t.Fatalf("mask check of a branch with a planted email: want exit 1 naming the column:\n%s", r)
	}
	if strings.Contains(r.stdout+r.stderr, raw) {
		t.Fatalf("mask check printed the raw value")
	}
	// A suspended branch is woken for the check.
	d.postAction(t, "leaky", "suspend")
	if b := d.get(t, a, "leaky"); b.State != "suspended" {
		t.Fatalf("branch state after suspend: %s", b.State)
	}
	res := decode[api.MaskCheck](t, d.cli(a, "mask", "check", "leaky", "-o", "json"))
	if len(res.Findings) == 0 || res.Target != "leaky" {
		t.Fatalf("mask check -o json: %+v", res)
	}
	// Another user cannot scan alice's branch; main stays clean.
	if r := d.cli(ensureUser(t, "e2ebob", socketGroup), "mask", "check", "leaky"); r.code != 1 || !strings.Contains(r.stderr, "leaky") {
		t.Fatalf("mask check of someone else's branch:\n%s", r)
	}
	if r := d.cli(ensureUser(t, "e2ebob", socketGroup), "mask", "check"); r.code != 0 {
		t.Fatalf("mask check of main as another developer:\n%s", r)
	}
	logb, _ := os.ReadFile(d.LogPath)
	if strings.Contains(string(logb), raw) {
		t.Fatalf("the planted raw email reached the daemon log")
	}
}

// sampleRaw returns a few raw emails from the source.
func sampleRaw(t *testing.T, src interface{ ConnString(string) string }) []string {
	t.Helper()
	return strs(t, connectT(t, src.ConnString("shop")), "SELECT email FROM customers ORDER BY id LIMIT 5")
}

// postAction POSTs /v1/branches/{name}/{action} as root over the socket.
func (d *daemon) postAction(t *testing.T, name, action string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", d.Socket)
	}}}
	resp, err := c.Post("http://pgtwin/v1/branches/"+url.PathEscape(name)+"/"+action, "application/json", nil)
	if err != nil {
		t.Fatalf("%s %s: %v", action, name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %d %s", action, name, resp.StatusCode, b)
	}
}
