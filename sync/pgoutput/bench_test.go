package pgoutput

import "testing"

func BenchmarkDecodeInsert(b *testing.B) {
	data := readFixture(b, "stream_insert")
	var d Decoder
	d.inStream = true
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeUpdateFull(b *testing.B) {
	data := readFixture(b, "update_full")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data, false); err != nil {
			b.Fatal(err)
		}
	}
}
