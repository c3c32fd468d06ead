package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// maskedColumns are the shop's columns the rules change; every other
// column must arrive byte for byte.
var maskedColumns = map[string][]string{
	"customers": {"email", "full_name", "phone", "birth_date", "notes", "profile"},
	"addresses": {"street", "city", "postcode"},
	"orders":    {"contact_email"},
	"payments":  {"card_number", "client_ip"},
}

func isMasked(table, col string) bool {
	for _, c := range maskedColumns[table] {
		if c == col {
			return true
		}
	}
	return false
}

// TestSyncDump: a masked dump sync through the CLI makes main a faithful,
// masked copy; a second sync with the same key masks the same values the
// same way; branches keep the data they were made from until reset; no raw
// PII value of the source is anywhere under data_dir or in the log.
func TestSyncDump(t *testing.T) {
	const customers = 5000
	src := startShop(t, customers)
	const planted = "Zebediah Quackenbush"
	src.Exec(t, "shop", fmt.Sprintf("UPDATE customers SET full_name = '%s' WHERE id = 17", planted))
	d := startSyncDaemon(t, src, syncOpts{})

	if r := d.cli(root, "mask", "plan"); r.code != 0 || !strings.Contains(r.stdout, "mask: email (unique)") {
		t.Fatalf("mask plan with every PII column covered:\n%s", r)
	}
	st1 := d.syncOK(t)
	if st1.TablesDone != 4 || st1.TablesTotal != 4 || st1.Rows < customers*5 {
		t.Fatalf("sync status after the first sync: %+v", st1)
	}
	srcConn := connectT(t, src.ConnString("shop"))
	mainConn := connectT(t, d.mainConnString(t))

	// Row counts, FKs, kept columns byte-identical, masked columns changed.
	for _, table := range shopTables {
		q := "SELECT count(*) FROM " + table
		if s, m := count(t, srcConn, q), count(t, mainConn, q); s != m || s == 0 {
			t.Errorf("%s: source has %d rows, main %d", table, s, m)
		}
		for _, col := range columns(t, srcConn, table) {
			sh, mh := columnHash(t, srcConn, table, col, 0), columnHash(t, mainConn, table, col, 0)
			if !isMasked(table, col) {
				if sh != mh {
					t.Errorf("kept column %s.%s differs between source and main", table, col)
				}
				continue
			}
			if sh == mh {
				t.Errorf("masked column %s.%s is identical to the source", table, col)
			}
			sv, mv := columnValues(t, srcConn, table, col), columnValues(t, mainConn, table, col)
			same := 0
			for id, v := range sv {
				if v != nil && mv[id] != nil && *v == *mv[id] {
					same++
				}
			}
			// A masked city or street may by chance be a real one; an
			// email, phone or card never.
			limit := len(sv) / 20
			if col == "email" || col == "contact_email" || col == "phone" || col == "card_number" {
				limit = 0
			}
			if same > limit {
				t.Errorf("masked column %s.%s: %d of %d values equal the source's", table, col, same, len(sv))
			}
		}
	}
	for _, fk := range []string{
		"SELECT count(*) FROM addresses a LEFT JOIN customers c ON c.id = a.customer_id WHERE c.id IS NULL",
		"SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL",
		"SELECT count(*) FROM payments p LEFT JOIN orders o ON o.id = p.order_id WHERE o.id IS NULL",
		"SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated",
	} {
		if n := count(t, mainConn, fk); n != 0 {
			t.Errorf("main: %s = %d", fk, n)
		}
	}
	if n := count(t, mainConn, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"); n != 3 {
		t.Errorf("main has %d foreign keys, the source 3", n)
	}
	// Emails stay joinable: orders.contact_email was customers.email.
	if n := count(t, mainConn, "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.contact_email <> c.email"); n != 0 {
		t.Errorf("%d orders' masked contact_email differ from their customer's masked email", n)
	}
	masked1 := map[string]string{}
	for table, cols := range maskedColumns {
		for _, col := range cols {
			masked1[table+"."+col] = columnHash(t, mainConn, table, col, 0)
		}
	}
	mainConn.Close(t.Context())

	// A branch of the first sync; then the source changes.
	b1 := d.create(t, root, "before")
	src.Exec(t, "shop", `INSERT INTO customers (email, full_name, phone) VALUES ('new.person@gmail.com', 'New Person', '+1 (999) 555-9999');
		UPDATE orders SET total = total + 1 WHERE id <= 10`)

	st2 := d.syncOK(t)
	if st2.Snapshot == st1.Snapshot {
		t.Fatalf("the second sync produced no new snapshot (%s)", st2.Snapshot)
	}
	mainConn = connectT(t, d.mainConnString(t))
	// Same key, same input: the same masked values (the unchanged rows).
	for table, cols := range maskedColumns {
		for _, col := range cols {
			upTo := customers * 2 // every row of the first sync (the new customer is id customers+1)
			if table == "customers" {
				upTo = customers
			}
			b1c := connectT(t, b1.ConnectionURI)
			if a, b := columnHash(t, b1c, table, col, upTo), columnHash(t, mainConn, table, col, upTo); a != b || a == "" {
				t.Errorf("%s.%s masked differently by the second sync with the same key", table, col)
			}
			b1c.Close(t.Context())
		}
	}
	const newRow = "SELECT count(*) FROM customers"
	if n := queryInt(t, b1.ConnectionURI, newRow); n != customers {
		t.Errorf("branch made before the second sync sees %d customers, want the first sync's %d", n, customers)
	}
	b2 := d.create(t, root, "after")
	if n := queryInt(t, b2.ConnectionURI, newRow); n != customers+1 {
		t.Errorf("branch made after the second sync sees %d customers, want %d", n, customers+1)
	}
	if b2.Snapshot != st2.Snapshot || b1.Snapshot != st1.Snapshot {
		t.Errorf("branches on snapshots %s and %s, syncs made %s and %s", b1.Snapshot, b2.Snapshot, st1.Snapshot, st2.Snapshot)
	}
	b1r := d.reset(t, root, "before")
	if n := queryInt(t, b1r.ConnectionURI, newRow); n != customers+1 {
		t.Errorf("branch reset after the second sync sees %d customers, want %d", n, customers+1)
	}
	if b1r.ConnectionURI != b1.ConnectionURI {
		t.Errorf("reset changed the branch URL")
	}

	// No leak: no raw value anywhere under data_dir (WAL included) or in
	// the log.
	needles := leakNeedles(t, srcConn)
	extra := []string{planted}
	files, n, hits := scanTree(t, d.DataDir, needles, extra)
	if files < 100 || n < 10<<20 {
		t.Fatalf("scanned only %d files, %d bytes under %s", files, n, d.DataDir)
	}
	if len(hits) > 0 {
		if len(hits) > 20 {
			hits = hits[:20]
		}
		t.Errorf("raw PII under data_dir:\n%s", strings.Join(hits, "\n"))
	}
	logb, err := os.ReadFile(d.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if lh := findNeedles(logb, needles, extra); len(lh) > 0 {
		t.Errorf("raw PII in the daemon log: %v", lh)
	}
	// The scanner finds what it looks for: the source's own files hold it.
	if _, _, srcHits := scanTree(t, src.Dir, needles, extra); len(srcHits) < 100 {
		t.Errorf("the leak scan found only %d raw values in the source's own data directory; it does not work", len(srcHits))
	}
	t.Logf("leak scan: %d files, %.1f MiB under data_dir, %d raw values looked for", files, float64(n)/(1<<20), len(needles))
}
