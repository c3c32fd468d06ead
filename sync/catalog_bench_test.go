package twinsync

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// BenchmarkMaskedCopyPipeline copies a 10-column table (email, full_name and
// phone masked) from one real database to another through COPY out → mask →
// COPY in, against the same pipeline with every column kept: the cost of
// masking where it runs, next to PostgreSQL's own COPY work.
func BenchmarkMaskedCopyPipeline(b *testing.B) {
	ctx := context.Background()
	pg := pgtest.Start(b, pgtest.Options{Databases: []string{"src", "dst"}})
	const schema = `CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, full_name text, phone text,
		created_at timestamptz, status text, total numeric(12,2), country text, category text, active boolean)`
	pg.Exec(b, "src", schema+`;
INSERT INTO users SELECT i, 'user' || i || '@corp' || (i % 50) || '.com', 'First' || (i % 300) || ' Last' || (i % 500),
	'+1 (' || (200 + i % 800) || ') 555-' || lpad((i % 10000)::text, 4, '0'), timestamptz '2024-01-01' + i * interval '1 minute',
	'paid', (i % 1000) + 0.25, 'US', 'some category ' || (i % 20), i % 2 = 0
FROM generate_series(1, 100000) i; ANALYZE users;`)
	pg.Exec(b, "dst", schema)
	src, dst := pg.Connect(b, "src"), pg.Connect(b, "dst")
	cat, err := ReadCatalog(ctx, src, Filter{})
	if err != nil {
		b.Fatal(err)
	}
	keep := map[string]any{"transform": "keep"}
	for _, mode := range []string{"keep", "masked"} {
		cols := map[string]map[string]any{"public.users.email": keep, "public.users.full_name": keep, "public.users.phone": keep}
		if mode == "masked" {
			cols = map[string]map[string]any{"public.users.email": {"transform": "email"},
				"public.users.full_name": {"transform": "name"}, "public.users.phone": {"transform": "phone"}}
		}
		rules, err := anonymize.ParseRules(cols)
		if err != nil {
			b.Fatal(err)
		}
		plan, err := anonymize.BuildPlan(cat, rules, anonymize.PolicyFail)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(mode, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := dst.Exec(ctx, "TRUNCATE users"); err != nil {
					b.Fatal(err)
				}
				m, err := plan.Table("public", "users", bytes.Repeat([]byte{1}, 32))
				if err != nil {
					b.Fatal(err)
				}
				pipeCopy(b, src, dst, m)
			}
			b.ReportMetric(float64(100000*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// pipeCopy streams COPY out of src through the masker into COPY in of dst.
func pipeCopy(b *testing.B, src, dst *pgx.Conn, m *anonymize.TableMasker) {
	ctx := context.Background()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := dst.PgConn().CopyFrom(ctx, pr, "COPY users FROM STDIN")
		pr.CloseWithError(err)
		done <- err
	}()
	lw := &benchLineMasker{m: m, w: pw}
	_, err := src.PgConn().CopyTo(ctx, lw, "COPY users TO STDOUT")
	if err == nil {
		err = lw.flush()
	}
	pw.CloseWithError(err)
	if err2 := <-done; err == nil {
		err = err2
	}
	if err != nil {
		b.Fatal(err)
	}
}

// benchLineMasker masks whole COPY lines as they arrive and writes in batches.
type benchLineMasker struct {
	m    *anonymize.TableMasker
	w    io.Writer
	pend []byte
	out  []byte
}

func (w *benchLineMasker) Write(p []byte) (int, error) {
	w.pend = append(w.pend, p...)
	for {
		i := bytes.IndexByte(w.pend, '\n')
		if i < 0 {
			break
		}
		var err error
		if w.out, err = w.m.MaskCopyLine(w.out, w.pend[:i+1]); err != nil {
			return 0, err
		}
		w.pend = w.pend[i+1:]
	}
	if len(w.pend) == 0 {
		w.pend = w.pend[:0:cap(w.pend)]
	}
	if len(w.out) >= 256<<10 {
		return len(p), w.flush()
	}
	return len(p), nil
}

func (w *benchLineMasker) flush() error {
	_, err := w.w.Write(w.out)
	w.out = w.out[:0]
	return err
}
