package pgoutput

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Fixtures are pgoutput messages captured from PostgreSQL 15 by the
// integration tests (PGOUTPUT_CAPTURE=1). A "stream_" prefix means the
// message was sent inside a stream segment.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name+".hex"))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	data, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return data
}

func txt(s string) TupleColumn { return TupleColumn{Kind: TupleText, Data: []byte(s)} }

var null = TupleColumn{Kind: TupleNull}

func TestDecodeFixtures(t *testing.T) {
	utc := func(sec, usec int) time.Time { return time.Date(2026, 11, 21, 5, 23, sec, usec*1000, time.UTC) }
	tests := map[string]ProtocolMessage{
		"begin":  &Begin{FinalLSN: 0x15642C0, CommitTime: utc(38, 664698), Xid: 725},
		"commit": &Commit{CommitLSN: 0x15642C0, TransactionEndLSN: 0x15642F0, CommitTime: utc(38, 664698)},
		"origin": &Origin{CommitLSN: 0xABCDEF, Name: "upstream"},
		"relation": &Relation{RelationID: 16389, Namespace: "public", RelationName: "t_default", ReplicaIdentity: 'd', Columns: []RelationColumn{
			{Flags: 1, Name: "id", DataType: 23, TypeModifier: -1},
			{Name: "name", DataType: 25, TypeModifier: -1},
			{Name: "note", DataType: 25, TypeModifier: -1},
		}},
		"type":              &TypeInfo{DataType: 16385, Namespace: "public", Name: "mood"},
		"insert":            &Insert{RelationID: 16389, Tuple: Tuple{txt("3"), txt("after"), null}},
		"update_none":       &Update{RelationID: 16389, NewTuple: Tuple{txt("3"), txt("b"), null}},
		"update_key":        &Update{RelationID: 16389, OldTupleType: 'K', OldTuple: Tuple{txt("3"), null, null}, NewTuple: Tuple{txt("4"), txt("b"), null}},
		"update_full":       &Update{RelationID: 16396, OldTupleType: 'O', OldTuple: Tuple{txt("1"), txt("old"), txt("sad")}, NewTuple: Tuple{txt("1"), txt("new"), txt("sad")}},
		"update_none_toast": &Update{RelationID: 16407, NewTuple: Tuple{txt("1"), {Kind: TupleUnchanged}, txt("1")}},
		"delete_key":        &Delete{RelationID: 16389, OldTupleType: 'K', OldTuple: Tuple{txt("4"), null, null}},
		"delete_full":       &Delete{RelationID: 16396, OldTupleType: 'O', OldTuple: Tuple{txt("1"), txt("new"), txt("sad")}},
		"truncate":          &Truncate{Options: TruncateCascade | TruncateRestartIdentity, RelationIDs: []uint32{16415, 16422}},
		"message_txtrue":    &Message{Transactional: true, LSN: 0x1580C80, Prefix: "tx", Content: []byte("hello")},
		"message_txfalse":   &Message{LSN: 0x1580CB8, Prefix: "ntx", Content: []byte{0, 0xff}},
		"streamstart":       &StreamStart{Xid: 725, FirstSegment: true},
		"stream_streamstop": &StreamStop{},
		"streamcommit":      &StreamCommit{Xid: 725, CommitLSN: 0x1675A20, TransactionEndLSN: 0x1675A58, CommitTime: time.Date(2026, 11, 21, 5, 23, 47, 559481000, time.UTC)},
		"streamabort":       &StreamAbort{Xid: 728, SubXid: 728},
		"streamabort_sub":   &StreamAbort{Xid: 725, SubXid: 726},
		"stream_relation": &Relation{Xid: 725, RelationID: 16384, Namespace: "public", RelationName: "big", ReplicaIdentity: 'd', Columns: []RelationColumn{
			{Flags: 1, Name: "id", DataType: 23, TypeModifier: -1},
			{Name: "pad", DataType: 25, TypeModifier: -1},
		}},
		"stream_type":           &TypeInfo{Xid: 729, DataType: 16394, Namespace: "public", Name: "color"},
		"stream_insert":         &Insert{Xid: 725, RelationID: 16384, Tuple: Tuple{txt("1"), txt(strings.Repeat("x", 100))}},
		"stream_update_none":    &Update{Xid: 729, RelationID: 16384, NewTuple: Tuple{txt("7001"), txt("u")}},
		"stream_delete_key":     &Delete{Xid: 729, RelationID: 16384, OldTupleType: 'K', OldTuple: Tuple{txt("7002"), null}},
		"stream_truncate":       &Truncate{Xid: 729, RelationIDs: []uint32{16397}},
		"stream_message_txtrue": &Message{Xid: 729, Transactional: true, LSN: 0x1722320, Prefix: "in-stream", Content: []byte("x")},
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "fixtures", "*.hex"))
	if len(files) != len(tests) {
		t.Errorf("%d fixture files, %d expectations", len(files), len(tests))
	}
	for name, want := range tests {
		data := readFixture(t, name)
		got, err := Decode(data, strings.HasPrefix(name, "stream_"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
		// Every strict prefix is malformed, never a panic or a success.
		for n := 0; n < len(data); n++ {
			if _, err := Decode(data[:n], strings.HasPrefix(name, "stream_")); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s cut to %d bytes: %v", name, n, err)
				break
			}
		}
		if _, ok := got.(*StreamAbort); ok {
			continue // may carry optional trailing fields (protocol 4)
		}
		if _, err := Decode(append(bytes.Clone(data), 0), strings.HasPrefix(name, "stream_")); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s with a trailing byte: %v", name, err)
		}
	}
}

func TestDecodeNoCopy(t *testing.T) {
	data := readFixture(t, "insert")
	m, err := Decode(data, false)
	if err != nil {
		t.Fatal(err)
	}
	v := m.(*Insert).Tuple[1].Data
	if &v[0] != &data[len(data)-6] {
		t.Fatal("tuple value was copied; it should point into the message")
	}
	if cap(v) != len(v) {
		t.Fatal("tuple value can be appended into the rest of the message")
	}
}

func TestDecodeStreamAbortParallel(t *testing.T) {
	data := append(readFixture(t, "streamabort_sub"), 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	m, err := Decode(data, false)
	if err != nil {
		t.Fatal(err)
	}
	a := m.(*StreamAbort)
	if a.AbortLSN != 0x100 || !a.AbortTime.Equal(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("abort = %+v", a)
	}
}

// TestDecoderState checks that the stateful decoder reads the xid of
// changes inside a stream segment and refuses out-of-place messages.
func TestDecoderState(t *testing.T) {
	var d Decoder
	decode := func(name string) (ProtocolMessage, error) { return d.Decode(readFixture(t, name)) }
	must := func(name string) ProtocolMessage {
		t.Helper()
		m, err := decode(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	must("streamstart")
	if in, xid := d.InStream(); !in || xid != 725 {
		t.Fatalf("in stream = %v %d", in, xid)
	}
	if ins := must("stream_insert").(*Insert); ins.Xid != 725 || ins.RelationID != 16384 {
		t.Fatalf("streamed insert %+v", ins)
	}
	for _, bad := range []string{"streamstart", "begin", "commit", "streamcommit", "streamabort"} {
		if _, err := decode(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s inside a stream: %v", bad, err)
		}
	}
	must("stream_streamstop")
	if _, err := decode("stream_streamstop"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("StreamStop outside a stream: %v", err)
	}
	must("streamcommit")
	must("begin")
	must("insert")
	must("commit")
	must("streamstart")
	d.Reset()
	if in, _ := d.InStream(); in {
		t.Fatal("Reset left the decoder in a stream")
	}
}

func TestDecodeMalformed(t *testing.T) {
	for name, hexs := range map[string]string{
		"empty":                  "",
		"unknown type":           "5a",
		"bad tuple kind":         "49000040054e00017800",
		"negative value length":  "49000040054e000174ffffffff",
		"huge column count":      "49000040054e7fff",
		"negative column count":  "49000040054eff00",
		"no N before new tuple":  "55000040054b00016e4f00016e",
		"bad delete kind":        "44000040054e00016e",
		"unterminated string":    "4f0000000000abcdef7570",
		"huge truncate count":    "54" + "7fffffff" + "00",
		"negative message size":  "4d00" + "0000000000000001" + "7000" + "ffffffff",
		"huge relation columns":  "52000040057000740064" + "7fff",
		"insert without N":       "49000040054b0000",
		"stream start truncated": "53000002",
	} {
		data, err := hex.DecodeString(hexs)
		if err != nil {
			t.Fatalf("%s: bad hex", name)
		}
		if m, err := Decode(data, false); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %+v, %v; want ErrMalformed", name, m, err)
		}
	}
}

func TestMessageTypeString(t *testing.T) {
	if TypeStreamCommit.String() != "StreamCommit" || MessageType('Z').String() != "Unknown(Z)" {
		t.Fatal(TypeStreamCommit.String(), MessageType('Z').String())
	}
}
