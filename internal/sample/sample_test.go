package sample

import (
	"strconv"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

func TestSampleBuildsAndLooksReal(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{Databases: []string{"shop"}})
	c.Exec(t, "shop", Luhn+Schema)
	c.Exec(t, "shop", Data(2000))

	counts := c.Psql(t, "shop", `SELECT (SELECT count(*) FROM customers) || ' ' || (SELECT count(*) FROM addresses)
		|| ' ' || (SELECT count(*) FROM orders) || ' ' || (SELECT count(*) FROM payments)`)
	if counts != "2000 2000 4000 2000" {
		t.Fatalf("row counts = %q", counts)
	}
	if dup := c.Psql(t, "shop", "SELECT count(*) - count(DISTINCT email) FROM customers"); dup != "0" {
		t.Fatalf("duplicate emails: %s", dup)
	}
	cards := strings.Fields(c.Psql(t, "shop", "SELECT card_number FROM payments ORDER BY id LIMIT 50"))
	for _, n := range cards {
		if len(n) != 16 || !luhnValid(n) {
			t.Fatalf("card %s is not a valid 16-digit Luhn number", n)
		}
	}
	// Same data on every run: the demo and the benchmarks rely on it.
	c.Exec(t, "postgres", "CREATE DATABASE shop2")
	c.Exec(t, "shop2", Luhn+Schema)
	c.Exec(t, "shop2", Data(2000))
	q := "SELECT md5(string_agg(email || full_name || coalesce(phone,'') || profile::text, ',' ORDER BY id)) FROM customers"
	if a, b := c.Psql(t, "shop", q), c.Psql(t, "shop2", q); a != b {
		t.Fatalf("data differs between runs: %s vs %s", a, b)
	}
}

func luhnValid(s string) bool {
	sum := 0
	for i := len(s) - 1; i >= 0; i-- {
		d, _ := strconv.Atoi(s[i : i+1])
		if (len(s)-1-i)%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
