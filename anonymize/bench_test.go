package anonymize

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time this OS thread has used. On a shared machine
// wall-clock rows/s says more about the neighbours than about the code;
// rows per CPU-second of the benchmark's own (locked) thread does not.
func threadCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRows are COPY text rows of 10 columns, three of them PII (email,
// full_name, phone), all distinct so no masking work repeats.
func benchRows(n int) [][]byte {
	rows := make([][]byte, n)
	for i := range rows {
		rows[i] = fmt.Appendf(nil, "%d\tuser%d.name@corp%d.com\tFirstname%d Lastname%d\t+1 (%03d) 555-%04d\t2024-03-%02d 12:%02d:%02d.123456+00\tpaid\t%d.%02d\tUS\tsome free text, row %d\tt\n",
			i+1, i, i%50, i%300, i%500, 200+i%800, i%10000, 1+i%28, i%60, i%60, i%1000, i%100, i)
	}
	return rows
}

func benchPlan(b *testing.B, masked bool) *TableMasker {
	cols := []Column{
		{Name: "id", Type: "bigint", Base: "int8"},
		{Name: "email", Type: "text", Base: "text"},
		{Name: "full_name", Type: "text", Base: "text"},
		{Name: "phone", Type: "text", Base: "text"},
		{Name: "created_at", Type: "timestamp with time zone", Base: "timestamptz"},
		{Name: "status", Type: "text", Base: "text"},
		{Name: "total", Type: "numeric(12,2)", Base: "numeric"},
		{Name: "country", Type: "text", Base: "text"},
		{Name: "category", Type: "text", Base: "text"},
		{Name: "active", Type: "boolean", Base: "bool"},
	}
	keep := rule("keep")
	rules := Rules{"public.users.email": keep, "public.users.full_name": keep, "public.users.phone": keep}
	if masked {
		rules = Rules{
			"public.users.email":     rule("email"),
			"public.users.full_name": rule("name"),
			"public.users.phone":     rule("phone"),
		}
	}
	plan, err := BuildPlan(&Catalog{Tables: []Table{{Schema: "public", Name: "users", Columns: cols}}}, rules, PolicyFail)
	if err != nil {
		b.Fatal(err)
	}
	m, err := plan.Table("public", "users", testKey)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchMask(b *testing.B, masked bool) {
	rows := benchRows(1 << 14)
	m := benchPlan(b, masked)
	var dst []byte
	var bytesIn int64
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := threadCPU()
	for i := 0; i < b.N; i++ {
		row := rows[i&(len(rows)-1)]
		var err error
		dst, err = m.MaskCopyLine(dst[:0], row)
		if err != nil {
			b.Fatal(err)
		}
		bytesIn += int64(len(row))
	}
	cpu := threadCPU() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "rows/cpu-s")
	b.SetBytes(bytesIn / int64(b.N))
}

// BenchmarkCopyMasked: 10 columns, email + name + phone masked.
func BenchmarkCopyMasked(b *testing.B) { benchMask(b, true) }

// BenchmarkCopyPassThrough: the same rows through a masker with no rules
// (the row is still validated: its field count must match the table).
func BenchmarkCopyPassThrough(b *testing.B) { benchMask(b, false) }

// BenchmarkCopyDecodeEncode: the same rows split into all 10 fields, each
// decoded and re-encoded, as a codec that looked at every column would.
func BenchmarkCopyDecodeEncode(b *testing.B) {
	rows := benchRows(1 << 14)
	var dst, dec []byte
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := threadCPU()
	for i := 0; i < b.N; i++ {
		line := rows[i&(len(rows)-1)]
		line = line[:len(line)-1]
		dst = dst[:0]
		start := 0
		for {
			end, _ := nextField(line, start)
			dec = DecodeCopyField(dec[:0], line[start:end])
			dst = EncodeCopyField(dst, dec)
			if end >= len(line) {
				break
			}
			dst = append(dst, '\t')
			start = end + 1
		}
		dst = append(dst, '\n')
	}
	cpu := threadCPU() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "rows/cpu-s")
}

func BenchmarkTransformers(b *testing.B) {
	for _, r := range []Rule{rule("email"), rule("name"), rule("phone")} {
		tr := mustT(b, r, testKey, ColumnType{Base: "text"})
		in := []byte("+1 (555) 010-4477")
		b.Run(r.Transform, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var out []byte
			cpu0 := threadCPU()
			for i := 0; i < b.N; i++ {
				in[len(in)-1] = byte('0' + i%10)
				out, _, _ = tr.Append(out[:0], in)
			}
			b.ReportMetric(float64((threadCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
