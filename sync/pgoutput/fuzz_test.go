package pgoutput

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// FuzzDecode feeds arbitrary bytes to the decoder: it must return a message
// or an ErrMalformed error, never panic, and decoded values must point into
// the input. Seeds: testdata/fuzz/FuzzDecode plus every captured fixture.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fixtures", "*.hex"))
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".hex")
		f.Add(readFixture(f, name), strings.HasPrefix(name, "stream_"))
	}
	f.Fuzz(func(t *testing.T, data []byte, inStream bool) {
		m, err := Decode(data, inStream)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			if m != nil {
				t.Fatalf("message %+v with error", m)
			}
			return
		}
		if m == nil || m.Type() != MessageType(data[0]) {
			t.Fatalf("decoded %+v from type %q", m, data[0])
		}
		for _, tu := range tuplesOf(m) {
			for _, c := range tu {
				if len(c.Data) > 0 && !within(c.Data, data) {
					t.Fatal("tuple value does not point into the input")
				}
			}
		}
		// The stateful decoder agrees when its state matches.
		var d Decoder
		if inStream {
			d.inStream, d.streamXid = true, 1
		}
		if _, err := d.Decode(data); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("decoder: %v", err)
		}
	})
}

// FuzzParseCopyData covers the replication stream's own framing
// (XLogData, keepalive).
func FuzzParseCopyData(f *testing.F) {
	f.Add(append([]byte{'w', 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, readFixture(f, "begin")...))
	f.Add([]byte{'k', 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{'w'})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseCopyData(b)
		if (m == nil) == (err == nil) {
			t.Fatalf("message %v, error %v", m, err)
		}
		if x, ok := m.(*XLogData); ok {
			if len(x.Data) != len(b)-25 || (len(x.Data) > 0 && within(x.Data, b)) {
				t.Fatal("XLogData payload must be the caller's own copy")
			}
		}
	})
}

func tuplesOf(m ProtocolMessage) []Tuple {
	switch m := m.(type) {
	case *Insert:
		return []Tuple{m.Tuple}
	case *Update:
		return []Tuple{m.OldTuple, m.NewTuple}
	case *Delete:
		return []Tuple{m.OldTuple}
	}
	return nil
}

// within reports whether sub lies inside buf's memory.
func within(sub, buf []byte) bool {
	if len(buf) == 0 {
		return false
	}
	s, b := uintptr(unsafe.Pointer(unsafe.SliceData(sub))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return s >= b && s+uintptr(len(sub)) <= b+uintptr(len(buf))
}
