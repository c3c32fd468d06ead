package twinsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/anonymize"
)

func demoRules(t *testing.T) anonymize.Rules {
	t.Helper()
	rules, err := anonymize.ParseRules(map[string]map[string]any{
		"public.customers.email":      {"transform": "email"},
		"public.customers.full_name":  {"transform": "name"},
		"public.customers.phone":      {"transform": "phone"},
		"public.addresses.street":     {"transform": "address"},
		"public.payments.card_number": {"transform": "partial", "keep_last": 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// The real masker: anonymize's plan read from the source catalog, keyed.
func TestDumpSyncWithAnonymizePlan(t *testing.T) {
	src := newSource(t, 300)
	key := []byte("0123456789abcdef0123456789abcdef")
	var twins []map[string]bool
	for i := range 2 {
		tgtCluster, tgt := newTarget(t)
		if i == 1 {
			// As twin.ReplaceMain hands it over: keyword/value, unix socket.
			tgt.ConnString = fmt.Sprintf("host=%s port=%d user=postgres dbname=app sslmode=disable", tgtCluster.Dir, tgtCluster.Port)
		}
		d := &dumper{
			Source: source{URL: src.ConnString("app")},
			Plan:   anonymizePlan(demoRules(t), anonymize.PolicyMask, key, selection{}),
		}
		if err := d.Run(context.Background(), tgt, nil); err != nil {
			t.Fatalf("Run: %v", err)
		}
		srcEmails := map[string]bool{}
		for _, e := range column(t, src, "customers", "email") {
			srcEmails[e] = true
		}
		emails := map[string]bool{}
		for _, e := range column(t, tgtCluster, "customers", "email") {
			if srcEmails[e] || !strings.Contains(e, "@") {
				t.Fatalf("twin email %q is a source value or not an address", e)
			}
			emails[e] = true
		}
		if len(emails) != 300 {
			t.Errorf("%d distinct masked emails, want 300 (UNIQUE)", len(emails))
		}
		for _, c := range column(t, tgtCluster, "payments", "card_number") {
			if strings.HasPrefix(c, "4111 1111") {
				t.Fatalf("card number %q reached the twin unmasked", c)
			}
		}
		if a, b := query[string](t, src, "SELECT md5(string_agg(total::text, ',' ORDER BY id)) FROM orders"),
			query[string](t, tgtCluster, "SELECT md5(string_agg(total::text, ',' ORDER BY id)) FROM orders"); a != b {
			t.Error("unmasked orders.total differs")
		}
		twins = append(twins, emails)
	}
	for e := range twins[0] {
		if !twins[1][e] {
			t.Fatalf("masked email %q of the first sync is not in the second: masking is not deterministic", e)
		}
	}
}

func TestDumpSyncStopsOnUnclassifiedPII(t *testing.T) {
	src := newSource(t, 50)
	tgtCluster, tgt := newTarget(t)
	d := &dumper{
		Source: source{URL: src.ConnString("app")},
		Plan:   anonymizePlan(anonymize.Rules{}, anonymize.PolicyFail, make([]byte, 32), selection{}),
	}
	err := d.Run(context.Background(), tgt, nil)
	var se *stepError
	if !errors.As(err, &se) || se.Step != stepPlan || !errors.Is(err, anonymize.ErrUnclassified) || !strings.Contains(err.Error(), "customers.email") {
		t.Fatalf("Run = %v, want step plan refusing unclassified PII and naming customers.email", err)
	}
	if strings.Contains(err.Error(), "user1@example.com") {
		t.Error("the error quotes a source value")
	}
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"); n != 0 {
		t.Errorf("the twin got %d relations though the plan failed", n)
	}
}
