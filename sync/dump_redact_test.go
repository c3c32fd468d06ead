package twinsync

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestRedactPgErrors(t *testing.T) {
	secret := "alice@example.com"
	for _, c := range []struct {
		err  *pgconn.PgError
		keep []string
	}{
		{&pgconn.PgError{Severity: "ERROR", Code: "23505", Message: `duplicate key value violates unique constraint "customers_email_key"`,
			Detail: "Key (email)=(" + secret + ") already exists.", Where: "COPY customers, line 3",
			SchemaName: "public", TableName: "customers", ConstraintName: "customers_email_key"},
			[]string{"customers_email_key", "23505"}},
		{&pgconn.PgError{Severity: "ERROR", Code: "22P02", Message: `invalid input syntax for type integer: "` + secret + `"`,
			Where: `COPY customers, line 3, column age: "` + secret + `"`},
			[]string{"invalid input syntax for type integer", "22P02"}},
		{&pgconn.PgError{Severity: "ERROR", Code: "23514", Message: `new row for relation "customers" violates check constraint "c"`,
			Detail: "Failing row contains (1, " + secret + ")."},
			[]string{`check constraint "c"`}},
		{&pgconn.PgError{Severity: "ERROR", Code: "P0001", Message: "bad email " + secret},
			[]string{"P0001", "withheld"}},
	} {
		for _, err := range []error{c.err, fmt.Errorf("table x: %w", c.err)} {
			r := redact(err)
			var pgErr *pgconn.PgError
			if !errors.As(r, &pgErr) || pgErr.Code != c.err.Code {
				t.Errorf("redact(%v) lost the PgError: %v", err, r)
			}
			all := r.Error() + pgErr.Detail + pgErr.Where + pgErr.Message + fmt.Sprintf("%+v", r)
			if strings.Contains(all, secret) {
				t.Errorf("redact(%v) = %q still quotes the row", err, r)
			}
			for _, k := range c.keep {
				if !strings.Contains(r.Error(), k) {
					t.Errorf("redact(%v) = %q lost %q", err, r, k)
				}
			}
		}
	}
	plain := errors.New("connection refused")
	if redact(plain) != plain {
		t.Error("redact changed an error without a PgError")
	}
}

// A source that shut down during the retries is still errSourceUnreachable
// once its last error (a PgError) is redacted.
func TestRedactKeepsSentinels(t *testing.T) {
	shut := &pgconn.PgError{Severity: "FATAL", Code: "57P03", Message: "the database system is shutting down"}
	err := redact(fmt.Errorf("join source snapshot: %w", fmt.Errorf("%w after 3 attempts: %w", errSourceUnreachable, shut)))
	if !errors.Is(err, errSourceUnreachable) {
		t.Errorf("redact(%v) lost errSourceUnreachable", err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P03" {
		t.Errorf("redact(%v) lost the PgError", err)
	}
	if errors.Is(err, errNeedsResync) {
		t.Errorf("redact(%v) gained errNeedsResync", err)
	}
}

func TestRedactToolStderr(t *testing.T) {
	stderr := `pg_restore: error: could not execute query: ERROR:  could not create unique index "customers_email_key"
DETAIL:  Key (email)=(bob@example.com) is duplicated.
Command was: ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_email_key UNIQUE (email);
pg_restore: error: insert or update on table "orders" violates foreign key constraint: Key (customer_id)=(42) is not present
`
	got := redactText(stderr)
	if strings.Contains(got, "bob@example.com") || strings.Contains(got, "(42)") || strings.Contains(got, "ADD CONSTRAINT") {
		t.Errorf("redactText kept row data or DDL: %q", got)
	}
	if !strings.Contains(got, `could not create unique index "customers_email_key"`) {
		t.Errorf("redactText lost the error: %q", got)
	}
}

func TestProgressRateAndETA(t *testing.T) {
	var p progress
	t0 := time.Now()
	p.begin(t0)
	p.setStep(stepCopy)
	p.startCopy([]*table{{estRows: 600, pages: 10}, {estRows: 400, pages: 5}}, t0)
	p.tableStarted("public.a")
	p.add(250, 25000)
	st := p.statsAt(t0.Add(10 * time.Second))
	if st.TablesTotal != 2 || st.Rows != 250 || st.RateBytes != 2500 || st.RateRows != 25 {
		t.Errorf("stats = %+v, want 2 tables, 250 rows, 2500 B/s, 25 rows/s", st)
	}
	if !st.HasETA || st.ETA != 30*time.Second {
		t.Errorf("ETA = %v (%v), want 30s for 750 rows left at 25 rows/s", st.ETA, st.HasETA)
	}
	if len(st.Active) != 1 || st.Active[0] != "public.a" {
		t.Errorf("active = %v", st.Active)
	}
	p.tableFinished("public.a", true)
	p.uncount(50, 5000)
	st = p.statsAt(t0.Add(10 * time.Second))
	if st.TablesDone != 1 || st.Rows != 200 || len(st.Active) != 0 {
		t.Errorf("after finishing a table and a retry's uncount: %+v", st)
	}

	var unknown progress
	unknown.begin(t0)
	unknown.setStep(stepCopy)
	unknown.startCopy([]*table{{estRows: -1, pages: 100}}, t0)
	unknown.add(10, 8192*25)
	if st := unknown.statsAt(t0.Add(time.Second)); !st.HasETA || st.ETA != 3*time.Second {
		t.Errorf("never-analyzed source: ETA = %v (%v), want 3s from pages", st.ETA, st.HasETA)
	}
}

func TestProgressRecordsSteps(t *testing.T) {
	var p progress
	p.begin(time.Now())
	p.setStep(stepPlan)
	p.setStep(stepSchema)
	st := p.Stats()
	if len(st.Steps) != 3 || st.Steps[0].Step != stepConnect || st.Steps[2].Step != stepSchema || st.Steps[2].Start.Before(st.Steps[0].Start) {
		t.Errorf("steps = %+v, want connect, plan, schema in order", st.Steps)
	}
	if st.ETASeconds() != nil {
		t.Error("an ETA before the copy began")
	}
}
