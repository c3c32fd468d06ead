package twinsync

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// binaryStream builds a COPY binary stream of rows (nil field: NULL).
func binaryStream(ext []byte, rows [][][]byte) []byte {
	b := append([]byte(nil), binarySignature...)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ext)))
	b = append(b, ext...)
	for _, r := range rows {
		b = binary.BigEndian.AppendUint16(b, uint16(len(r)))
		for _, f := range r {
			if f == nil {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
				continue
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		}
	}
	return binary.BigEndian.AppendUint16(b, 0xffff)
}

func TestBinaryCounter(t *testing.T) {
	rows := [][][]byte{
		{[]byte("abc"), nil, {}},
		{[]byte(strings.Repeat("x", 70000)), []byte{0xff, 0xff}, nil},
		{nil, nil, nil},
		{[]byte{0, 0, 0, 1}, []byte("\n\t\\"), []byte("z")},
	}
	stream := binaryStream([]byte("ext!"), rows)
	// Every split into two writes, and writes of every small size.
	for cut := 0; cut <= len(stream); cut += 1 + cut/64 {
		c := newBinaryCounter(3)
		n1, err1 := c.feed(stream[:cut])
		n2, err2 := c.feed(stream[cut:])
		if err1 != nil || err2 != nil || n1+n2 != 4 || !c.done() {
			t.Fatalf("cut at %d: rows %d+%d, errors %v %v, done %v", cut, n1, n2, err1, err2, c.done())
		}
	}
	for size := 1; size <= 7; size++ {
		c := newBinaryCounter(3)
		var n int64
		for i := 0; i < len(stream); i += size {
			k, err := c.feed(stream[i:min(i+size, len(stream))])
			if err != nil {
				t.Fatalf("writes of %d: %v", size, err)
			}
			n += k
		}
		if n != 4 || !c.done() {
			t.Fatalf("writes of %d: %d rows, done %v", size, n, c.done())
		}
	}

	for name, tc := range map[string]struct {
		stream []byte
		cols   int
	}{
		"wrong signature":      {append([]byte("PGCOPY\n\377\r\n\x01"), stream[11:]...), 3},
		"other column count":   {stream, 2},
		"bytes after trailer":  {append(append([]byte(nil), stream...), 0), 3},
		"negative field count": {append(append([]byte(nil), stream[:len(stream)-2]...), 0xff, 0xf0), 3},
	} {
		c := newBinaryCounter(tc.cols)
		if _, err := c.feed(tc.stream); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c := newBinaryCounter(3)
	if _, err := c.feed(stream[:len(stream)-3]); err != nil || c.done() {
		t.Errorf("a stream cut short: error %v, done %v (want no error, not done)", err, c.done())
	}
	mw := &maskWriter{w: &strings.Builder{}, bin: c, p: &progress{}}
	if err := mw.finish(); err == nil {
		t.Error("finish accepted a binary stream without its trailer")
	}
}

func TestBinaryColumns(t *testing.T) {
	for _, tc := range []struct {
		types []uint32
		want  bool
	}{
		{[]uint32{23, 25, 1184, 1700, 3802, 1007, 1009}, true},
		{nil, false},                 // no column: text, as ever
		{[]uint32{23, 16384}, false}, // a user type (enum, domain, composite, extension's)
		{[]uint32{142}, false},       // xml: not in the list
		{[]uint32{3904}, false},      // int4range
	} {
		if got := binaryColumns(tc.types); got != tc.want {
			t.Errorf("binaryColumns(%v) = %v, want %v", tc.types, got, tc.want)
		}
	}
	if !masksNothing(nil, 3) || masksNothing(hashRows{masked: []bool{false, true}}, 2) {
		t.Error("masksNothing: nil must pass, an unknown masker must not")
	}
}

// binaryTypesSQL is a table of every type copied in binary, with extreme
// values, NULLs and arrays, and a table of types that are not.
const binaryTypesSQL = `
CREATE EXTENSION hstore;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE typed (
	id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, o oid, b bool, f4 float4, f8 float8, n numeric, n2 numeric(10,2),
	tx text, vc varchar(5), bc char(3), nm name, by bytea, d date, tm time, ts timestamp, tz timestamptz,
	iv interval, u uuid, js json, jb jsonb, ip inet, cr cidr, mac macaddr,
	a4 int4[], at text[], an numeric[], atz timestamptz[], au uuid[], ajb jsonb[], abc char(2)[], aby bytea[],
	g int8 GENERATED ALWAYS AS (i8 / 2) STORED);
INSERT INTO typed VALUES
	(1, -32768, -2147483648, -9223372036854775808, 0, false, 'NaN', '-Infinity', 'NaN', -99999999.99,
	 E'tab\there\nnew\\line \u00e9\u4e2d', '', 'a', 'n', '\x', '-infinity', '00:00', '-infinity', '-infinity',
	 '-178000000 years', '00000000-0000-0000-0000-000000000000', '{"a":1, "a": 2 }', '{"b": [1, null, "x"]}',
	 '::1/128', '10.0.0.0/8', '00:00:00:00:00:00',
	 '{{1,2},{3,NULL}}', '{"a\"b","",NULL,"x,y"}', '{NaN,1e-1000,-0}', '{infinity,"2020-01-01 00:00+02"}', '{}',
	 '{"{}","[1]"}', '{a,"b "}', '{"\\x00ff",NULL}'),
	(2, 32767, 2147483647, 9223372036854775807, 4294967295, true, 1.17549435e-38, 5e-324, 'Infinity',
	 99999999.99, repeat('long ', 300000), 'five5', 'abc', repeat('m', 63), decode(repeat('00ff', 1000), 'hex'),
	 '5874897-12-31', '24:00:00', '294276-12-31 23:59:59.999999', 'infinity',
	 '1 mon -2 days 00:00:00.000003', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '[]', '{}',
	 '192.168.0.1/24', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff',
	 '[0:1]={7,8}', '{}', '{-Infinity}', NULL, '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', NULL, NULL, '{}'),
	(3, NULL, NULL, NULL, NULL, NULL, '-0', '-0', '-1.5e-300', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO typed (id, i8, tx, f8, tz) SELECT i, i * 3, 'row ' || i, i / 7.0, '2020-01-01'::timestamptz + i * interval '1 s'
	FROM generate_series(4, 20000) i;
CREATE TABLE odd (id int PRIMARY KEY, m mood, p posint, h hstore, am mood[], r int4range, x xml);
INSERT INTO odd VALUES (1, 'happy', 5, 'a=>1, "b c"=>NULL', '{sad,ok}', '[1,5)', '<a>x</a>'),
	(2, NULL, NULL, NULL, NULL, 'empty', NULL);
CREATE TABLE people (id int PRIMARY KEY, email text, born date);
INSERT INTO people VALUES (1, 'a@example.com', '1990-01-01'), (2, NULL, NULL);
ANALYZE;`

// TestCopyBinaryFormat syncs a table of every binary-copied type and one of
// types that are not: the rows are identical in the twin, the first came
// over in COPY binary and the second in text.
func TestCopyBinaryFormat(t *testing.T) {
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"app"}})
	src.Exec(t, "app", binaryTypesSQL)
	tgtCluster, tgt := newTarget(t)
	log, logs := testLogger(t)
	d := &dumper{Source: source{URL: src.ConnString("app")}, Parallel: 2, Plan: plan(hashMasker{"public.people": {"email"}}), Log: log}
	var p progress
	if err := d.Run(context.Background(), tgt, &p); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, tbl := range []string{"typed", "odd"} {
		q := "SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM " + tbl + " t"
		s, tw := query[string](t, src, q), query[string](t, tgtCluster, q)
		if s != tw {
			t.Errorf("%s: source %s, twin %s", tbl, s, tw)
		}
	}
	if got := p.Stats().Rows; got != 20004 {
		t.Errorf("progress counted %d rows, want 20004", got)
	}
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM people WHERE email LIKE '%@example.com'"); n != 0 {
		t.Errorf("%d emails of the masked table came through unmasked", n)
	}
	formats := map[string]bool{}
	for _, line := range strings.Split(logs.String(), "\n") {
		var e struct {
			Msg    string `json:"message"`
			Table  string
			Binary *bool `json:"binary"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "table copied" && e.Binary != nil {
			formats[e.Table] = *e.Binary
		}
	}
	if b, ok := formats["public.typed"]; !ok || !b {
		t.Errorf("public.typed: binary %v (logged: %v), want a binary copy", b, ok)
	}
	if b, ok := formats["public.odd"]; !ok || b {
		t.Errorf("public.odd: binary %v (logged: %v), want a text copy (enum, domain, hstore, range, xml)", b, ok)
	}
	if b, ok := formats["public.people"]; !ok || b {
		t.Errorf("public.people: binary %v (logged: %v), want a text copy through the masker", b, ok)
	}
	if !strings.Contains(logs.String(), `"binary":true`) {
		t.Errorf("the run logged no binary copy for servers of one version:\n%s", logs)
	}
}

// BenchmarkBinaryCounter follows a stream of pgbench_accounts-like rows.
func BenchmarkBinaryCounter(b *testing.B) {
	row := [][]byte{{0, 0, 0, 1}, {0, 0, 0, 1}, {0, 0, 0, 0}, []byte(strings.Repeat(" ", 84))}
	rows := make([][][]byte, 10000)
	for i := range rows {
		rows[i] = row
	}
	stream := binaryStream(nil, rows)
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		c := newBinaryCounter(4)
		for i := 0; i < len(stream); i += 65536 {
			if _, err := c.feed(stream[i:min(i+65536, len(stream))]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
