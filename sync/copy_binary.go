package twinsync

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// A table none of whose columns is masked is copied in COPY binary: the
// source sends each value by its type's send function and the twin reads
// it by the receive function, sparing both servers the text output and
// input of every integer, numeric and timestamp, and sparing the twin the
// parse of every line (TestBenchCopyFormat, pgbench_accounts, 6.8 M rows:
// 6.2-8.0 s against 7.9-10.0 s for text, the twin's backend 23-32% less
// CPU, the source's 14-23% less; the stream is 17% longer, and pgtwin
// follows it tuple by tuple at about 4.7 GB/s, BenchmarkBinaryCounter).
// Binary I/O is tied to the type's
// on-the-wire format, so it is used only for built-in types whose format
// both servers share (same major version, same server encoding) and that
// nothing between them reinterprets; everything else, and every table
// with a masked column (the masker reads COPY text), stays text.

// binaryCopyOn lets the benchmark compare against text (PGTWIN_BENCH_AB).
var binaryCopyOn = true

// binarySafeTypes are the built-in type OIDs (fixed in pg_type.dat, the
// same in every version) copied in binary. Their arrays are too: the array
// format carries the element type's OID, which is the same built-in OID on
// both servers.
var binarySafeTypes = map[uint32]bool{
	16: true, 17: true, 19: true, 20: true, 21: true, 23: true, 25: true, 26: true, // bool bytea name int8 int2 int4 text oid
	114: true, 650: true, 700: true, 701: true, 829: true, 869: true, // json cidr float4 float8 macaddr inet
	1042: true, 1043: true, 1082: true, 1083: true, 1114: true, 1184: true, 1186: true, // bpchar varchar date time timestamp timestamptz interval
	1700: true, 2950: true, 3802: true, // numeric uuid jsonb
}

// binarySafeArrays are the array types of binarySafeTypes.
var binarySafeArrays = map[uint32]bool{
	1000: true, 1001: true, 1003: true, 1016: true, 1005: true, 1007: true, 1009: true, 1028: true, // _bool _bytea _name _int8 _int2 _int4 _text _oid
	199: true, 651: true, 1021: true, 1022: true, 1040: true, 1041: true, // _json _cidr _float4 _float8 _macaddr _inet
	1014: true, 1015: true, 1182: true, 1183: true, 1115: true, 1185: true, 1187: true, // _bpchar _varchar _date _time _timestamp _timestamptz _interval
	1231: true, 2951: true, 3807: true, // _numeric _uuid _jsonb
}

// binaryColumns reports whether columns of these types may be copied in
// binary: at least one column, each a built-in type of the safe list or an
// array of one. A domain, an enum, a composite, a range or an extension's
// type has an OID of its own and stays text.
func binaryColumns(types []uint32) bool {
	if !binaryCopyOn || len(types) == 0 {
		return false
	}
	for _, t := range types {
		if !binarySafeTypes[t] && !binarySafeArrays[t] {
			return false
		}
	}
	return true
}

// binarySignature opens every COPY binary stream.
var binarySignature = []byte("PGCOPY\n\377\r\n\x00")

// binaryCounter follows a COPY binary stream as it passes through, any
// split across writes, to count its rows for the progress and to check it
// ended with the trailer: a 19-byte header and its extension, then tuples
// of an int16 field count and, for each field, an int32 length (-1 NULL)
// and that many bytes; an int16 -1 ends the stream.
type binaryCounter struct {
	state  int
	want   int    // prefix bytes the state reads
	buf    []byte // a prefix split across writes
	skip   int64  // field (or header extension) bytes to pass over
	fields int    // fields left in the current tuple
	ncols  int    // fields every tuple has: the COPY's column list
}

const (
	binHeader = iota
	binCount
	binLength
	binDone
)

func newBinaryCounter(columns int) *binaryCounter {
	return &binaryCounter{state: binHeader, want: 19, ncols: columns}
}

var errBinaryStream = errors.New("malformed COPY binary stream from the source")

// feed consumes p and returns how many rows it completed.
func (c *binaryCounter) feed(p []byte) (rows int64, err error) {
	for len(p) > 0 {
		if c.state == binCount && c.skip == 0 && len(c.buf) == 0 {
			n, k := c.tuples(p)
			rows += n
			if p = p[k:]; len(p) == 0 {
				break
			}
		}
		if c.skip > 0 {
			k := min(c.skip, int64(len(p)))
			c.skip -= k
			p = p[k:]
			continue
		}
		if c.state == binDone {
			return rows, errBinaryStream
		}
		var pre []byte
		if len(c.buf) == 0 && len(p) >= c.want {
			pre, p = p[:c.want], p[c.want:]
		} else {
			k := min(c.want-len(c.buf), len(p))
			c.buf = append(c.buf, p[:k]...)
			p = p[k:]
			if len(c.buf) < c.want {
				return rows, nil
			}
			pre = c.buf
		}
		switch c.state {
		case binHeader:
			if !bytes.Equal(pre[:11], binarySignature) {
				return rows, errBinaryStream
			}
			ext := int32(binary.BigEndian.Uint32(pre[15:19]))
			if ext < 0 {
				return rows, errBinaryStream
			}
			c.skip = int64(ext)
			c.state, c.want = binCount, 2
		case binCount:
			switch n := int16(binary.BigEndian.Uint16(pre)); {
			case n == -1:
				c.state = binDone
			case int(n) != c.ncols:
				// Not the column list asked for: never pass that on.
				return rows, errBinaryStream
			case n == 0:
				rows++
			default:
				c.fields = int(n)
				c.state, c.want = binLength, 4
			}
		case binLength:
			l := int32(binary.BigEndian.Uint32(pre))
			if l < -1 {
				return rows, errBinaryStream
			}
			if l > 0 {
				c.skip = int64(l)
			}
			if c.fields--; c.fields == 0 {
				rows++
				c.state, c.want = binCount, 2
			}
		}
		c.buf = c.buf[:0]
	}
	return rows, nil
}

// tuples is feed's fast path: it passes over the whole tuples at the start
// of p and leaves the rest (a tuple split across writes, the trailer, what
// is malformed) to feed's byte-wise states.
func (c *binaryCounter) tuples(p []byte) (rows int64, n int) {
	for len(p)-n >= 2 && int(int16(binary.BigEndian.Uint16(p[n:]))) == c.ncols {
		off := n + 2
		for range c.ncols {
			if len(p)-off < 4 {
				return rows, n
			}
			l := int32(binary.BigEndian.Uint32(p[off:]))
			if l < -1 || int64(len(p)-off-4) < int64(l) {
				return rows, n
			}
			off += 4 + max(int(l), 0)
		}
		rows++
		n = off
	}
	return rows, n
}

// done reports whether the stream ended with its trailer.
func (c *binaryCounter) done() bool { return c.state == binDone && c.skip == 0 }

// masksNothing reports whether rm passes all n columns through unchanged:
// nil, or a masker (anonymize's TableMasker) that says of each column that
// it is not masked.
func masksNothing(rm rowMasker, n int) bool {
	if rm == nil {
		return true
	}
	m, ok := rm.(interface{ Masked(int) bool })
	if !ok {
		return false
	}
	for i := range n {
		if m.Masked(i) {
			return false
		}
	}
	return true
}
