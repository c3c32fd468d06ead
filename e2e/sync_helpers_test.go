package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/internal/sample"
	"github.com/pgtwin/pgtwin/twin/api"
)

// shopRules masks every PII column of the sample shop (as the demo does).
var shopRules = map[string]string{
	"public.customers.email":      `{ transform = "email" }`,
	"public.customers.full_name":  `{ transform = "name" }`,
	"public.customers.phone":      `{ transform = "phone" }`,
	"public.customers.birth_date": `{ transform = "date", keep_year = true }`,
	"public.customers.notes":      `{ transform = "null" }`,
	"public.customers.profile":    `{ transform = "json", paths = { "contact.email" = { transform = "email" }, "contact.phone" = { transform = "phone" }, "last_login_ip" = { transform = "ip" } } }`,
	"public.addresses.street":     `{ transform = "address", part = "street" }`,
	"public.addresses.city":       `{ transform = "address", part = "city" }`,
	"public.addresses.postcode":   `{ transform = "address", part = "postcode" }`,
	"public.orders.contact_email": `{ transform = "email" }`,
	"public.payments.card_number": `{ transform = "partial", keep_last = 4 }`,
	"public.payments.client_ip":   `{ transform = "ip" }`,
}

// shopTables are the sample's tables, each ordered by its id.
var shopTables = []string{"customers", "addresses", "orders", "payments"}

// startShop starts a source cluster with the sample shop of n customers.
func startShop(t *testing.T, n int) *pgtest.Cluster {
	t.Helper()
	return startShopOpts(t, n, pgtest.Options{})
}

func startShopOpts(t *testing.T, n int, o pgtest.Options) *pgtest.Cluster {
	t.Helper()
	o.Databases = append(o.Databases, "shop")
	src := pgtest.Start(t, o)
	src.Exec(t, "shop", sample.Luhn+sample.Schema)
	src.Exec(t, "shop", sample.Data(n))
	return src
}

type syncOpts struct {
	schedule string
	without  []string // rule keys left out of the config
	mode     string   // sync.mode; default dump
	driver   string
	image    int64
	metrics  bool // serve daemon.metrics_address
}

// syncConfig is the [source], [sync] and [anonymize] part of a daemon config.
func syncConfig(t *testing.T, src *pgtest.Cluster, keyFile string, o syncOpts) string {
	if o.schedule == "" {
		o.schedule = "0 2 * * *"
	}
	var b strings.Builder
	if o.mode == "" {
		o.mode = "dump"
	}
	fmt.Fprintf(&b, "\n[source]\nurl = %q\n\n[sync]\nmode = %q\nschedule = %q\nparallel = 2\n\n", src.ConnString("shop"), o.mode, o.schedule)
	fmt.Fprintf(&b, "[anonymize]\nkey_file = %q\non_unclassified_pii = \"fail\"\n\n[anonymize.columns]\n", keyFile)
rules:
	for k, v := range shopRules {
		for _, w := range o.without {
			if w == k {
				continue rules
			}
		}
		fmt.Fprintf(&b, "%q = %s\n", k, v)
	}
	return b.String()
}

// startSyncDaemon starts a daemon syncing from src.
func startSyncDaemon(t *testing.T, src *pgtest.Cluster, o syncOpts) *daemon {
	t.Helper()
	if o.driver == "" {
		o.driver = "btrfs"
	}
	key := filepath.Join(t.TempDir(), "mask.key")
	return startDaemon(t, daemonOpts{Driver: o.driver, ImageSize: o.image, Metrics: o.metrics, Extra: syncConfig(t, src, key, o)})
}

func (d *daemon) syncStatus(t *testing.T) api.SyncStatus {
	t.Helper()
	return decode[api.SyncStatus](t, d.must(root, "sync", "status", "-o", "json"))
}

// syncOK runs `sync now --wait` and fails the test unless it succeeds.
func (d *daemon) syncOK(t *testing.T) api.SyncStatus {
	t.Helper()
	r := d.must(root, "sync", "now", "--wait")
	if !strings.Contains(r.stdout, "sync finished") {
		t.Fatalf("sync now --wait did not say it finished:\n%s", r)
	}
	st := d.syncStatus(t)
	if st.State != "idle" || st.Snapshot == "" || st.LastSuccess == nil {
		t.Fatalf("after a successful sync, sync status is %+v", st)
	}
	return st
}

func connectT(t *testing.T, uri string) *pgx.Conn {
	t.Helper()
	conn, err := connect(t, uri)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(uri), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	// Timestamps compare as text: the same zone on both sides.
	if _, err := conn.Exec(context.Background(), "SET TimeZone TO 'UTC'; SET DateStyle TO ISO"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// columns lists a table's columns in order.
func columns(t *testing.T, conn *pgx.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT attname::text FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, table)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// columnHash is the md5 of a column's text values in id order (ids up to
// maxID, 0: all).
func columnHash(t *testing.T, conn *pgx.Conn, table, col string, maxID int) string {
	t.Helper()
	where := ""
	if maxID > 0 {
		where = fmt.Sprintf(" WHERE id <= %d", maxID)
	}
	var h string
	q := fmt.Sprintf("SELECT coalesce(md5(string_agg(coalesce(%s::text, '<NULL>'), E'\\x01' ORDER BY id)), '') FROM %s%s",
		pgx.Identifier{col}.Sanitize(), pgx.Identifier{table}.Sanitize(), where)
	if err := conn.QueryRow(context.Background(), q).Scan(&h); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return h
}

// columnValues maps id to a column's text value.
func columnValues(t *testing.T, conn *pgx.Conn, table, col string) map[int64]*string {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT id, %s::text FROM %s",
		pgx.Identifier{col}.Sanitize(), pgx.Identifier{table}.Sanitize()))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]*string{}
	for rows.Next() {
		var id int64
		var v *string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func count(t *testing.T, conn *pgx.Conn, sql string) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func strs(t *testing.T, conn *pgx.Conn, sql string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// leakNeedles are raw PII values taken from the source: every email (also
// inside the json profile), every phone, every card number.
func leakNeedles(t *testing.T, src *pgx.Conn) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, q := range []string{
		"SELECT email FROM customers",
		"SELECT contact_email FROM orders",
		"SELECT profile #>> '{contact,email}' FROM customers WHERE profile #>> '{contact,email}' IS NOT NULL",
		"SELECT phone FROM customers WHERE phone IS NOT NULL",
		"SELECT card_number FROM payments",
	} {
		for _, v := range strs(t, src, q) {
			set[v] = true
		}
	}
	if len(set) < 100 {
		t.Fatalf("only %d PII values taken from the source", len(set))
	}
	return set
}

func emailByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '+'
}

// findNeedles returns the needles found in b: emails around each '@', and
// fixed-length phones and card numbers at their anchors (the sample's
// phones are "+1 (NNN) 555-NNNN", its cards 16 digits beginning "4000").
func findNeedles(b []byte, needles map[string]bool, extra []string) []string {
	var found []string
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '@')
		if j < 0 {
			break
		}
		at := i + j
		s, e := at, at+1
		for s > 0 && emailByte(b[s-1]) {
			s--
		}
		for e < len(b) && emailByte(b[e]) {
			e++
		}
		// Try every suffix of the local part and prefix of the domain end
		// the sample can produce: the token may be glued to other bytes.
		for ls := s; ls < at; ls++ {
			for de := at + 2; de <= e; de++ {
				if needles[string(b[ls:de])] && !insideMasked(b[s:at+1], ls-s) {
					found = append(found, string(b[ls:de]))
				}
			}
		}
		i = at + 1
	}
	for _, anchor := range []struct {
		a           string
		before, len int
	}{{") 555-", 7, 17}, {"4000", 0, 16}} {
		for i := 0; ; {
			j := bytes.Index(b[i:], []byte(anchor.a))
			if j < 0 {
				break
			}
			p := i + j - anchor.before
			if p >= 0 && p+anchor.len <= len(b) && needles[string(b[p:p+anchor.len])] {
				found = append(found, string(b[p:p+anchor.len]))
			}
			i += j + 1
		}
	}
	for _, x := range extra {
		if bytes.Contains(b, []byte(x)) {
			found = append(found, x)
		}
	}
	return found
}

// maskedLocal is the local part (with its '@') of what the email
// transformer writes: first.last.tag, f.tag (narrow columns) or
// first.last00.
var maskedLocal = regexp.MustCompile(`^(?:[a-z]+\.(?:[a-z]+\.)?[a-z2-7]{10}|[a-z]+\.[a-z]+[0-9]{2})@$`)

// insideMasked reports whether a needle found at local[i:] lies in the tail
// of a masked email that starts before it. The tag is random base32, so
// about one run in a hundred some tag ends in a sample local part such as
// "bulk3" (seen in CI: "aryanna.watkins.7dfj7bulk2@example.org"); that is
// the masker's output, not a leak. A raw value glued to other bytes (a
// varlena header, the jsonb key before it) does not take that shape.
func insideMasked(local []byte, i int) bool {
	for j := 0; j < i; j++ {
		if maskedLocal.Match(local[j:]) {
			return true
		}
	}
	return false
}

// scanTree searches every regular file under dir for the needles.
func scanTree(t *testing.T, dir string, needles map[string]bool, extra []string) (files int, bytesRead int64, hits []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a file removed while walking
			}
			return err
		}
		if !de.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		files++
		bytesRead += int64(len(b))
		for _, f := range findNeedles(b, needles, extra) {
			hits = append(hits, p+": "+f)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return files, bytesRead, hits
}

// syncLogEvents are the scheduler's events in the daemon log, in order.
type logEvent struct {
	Component string    `json:"component"`
	Trigger   string    `json:"trigger"`
	Message   string    `json:"message"`
	Time      time.Time `json:"time"`
}

func (d *daemon) schedulerEvents(t *testing.T) []logEvent {
	t.Helper()
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []logEvent
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e logEvent
		if json.Unmarshal([]byte(line), &e) == nil && e.Component == "sync-schedule" {
			out = append(out, e)
		}
	}
	return out
}
