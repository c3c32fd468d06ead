package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/engine/proxy"
)

// copyMB is the size of the COPY test; PGTWIN_PROXY_COPY_MB overrides it.
func copyMB() int {
	if n, err := strconv.Atoi(os.Getenv("PGTWIN_PROXY_COPY_MB")); err == nil && n > 0 {
		return n
	}
	return 200
}

// rows writes deterministic COPY text rows of about mb megabytes to w.
func rows(w io.Writer, mb int) error {
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	var raw [48]byte
	line := make([]byte, 0, 128)
	for i, n := 0, 0; n < mb<<20; i++ {
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		line = strconv.AppendInt(line[:0], int64(i), 10)
		line = append(line, '\t')
		line = hex.AppendEncode(line, raw[:])
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
		n += len(line)
	}
	return nil
}

type counter struct {
	n int64
	h io.Writer
}

func (c *counter) Write(b []byte) (int, error) { c.n += int64(len(b)); return c.h.Write(b) }

func TestLargeCopyIntact(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b, proxy.Options{})
	conn := connect(t, proxyURL(p, appRole, "disable"))
	ctx := context.Background()
	mb := copyMB()

	if _, err := conn.Exec(ctx, "CREATE UNLOGGED TABLE big(id int8, v text)"); err != nil {
		t.Fatal(err)
	}
	inHash := sha256.New()
	in := &counter{h: inHash}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(rows(io.MultiWriter(pw, in), mb)) }()
	tag, err := conn.PgConn().CopyFrom(ctx, pr, "COPY big FROM STDIN")
	if err != nil {
		t.Fatalf("COPY FROM STDIN: %v", err)
	}
	t.Logf("copied in %d rows, %d bytes", tag.RowsAffected(), in.n)

	// A synchronized scan could start mid-table; this test wants insertion order.
	if _, err := conn.Exec(ctx, "SET synchronize_seqscans = off"); err != nil {
		t.Fatal(err)
	}
	outHash := sha256.New()
	out := &counter{h: outHash}
	if _, err := conn.PgConn().CopyTo(ctx, out, "COPY big TO STDOUT"); err != nil {
		t.Fatalf("COPY TO STDOUT: %v", err)
	}
	if in.n != out.n || !bytes.Equal(inHash.Sum(nil), outHash.Sum(nil)) {
		t.Fatalf("COPY round trip differs: in %d bytes %x, out %d bytes %x", in.n, inHash.Sum(nil), out.n, outHash.Sum(nil))
	}
	if in.n < int64(mb)<<20 {
		t.Fatalf("copied only %d bytes", in.n)
	}
}

func TestLongQueryAndCancel(t *testing.T) {
	b := newBackend(t)
	// A short startup timeout proves the data path carries no deadline.
	p := startProxy(t, b, proxy.Options{StartupTimeout: 500 * time.Millisecond})
	conn := connect(t, proxyURL(p, appRole, "disable"))
	ctx := context.Background()

	if _, err := conn.Exec(ctx, "SELECT pg_sleep(2)"); err != nil {
		t.Fatalf("pg_sleep(2) through proxy: %v", err)
	}

	watch := connect(t, proxyURL(p, appRole, "disable"))
	pid := conn.PgConn().PID()
	res := make(chan error, 1)
	began := time.Now()
	go func() {
		_, err := conn.Exec(ctx, "SELECT pg_sleep(30)")
		res <- err
	}()
	eventually(t, "pg_sleep(30) to run", func() bool {
		var n int
		watch.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep(30)%' AND state = 'active'", pid).Scan(&n)
		return n == 1
	})
	// pgx dials the address it is connected to, which is the proxy.
	if err := conn.PgConn().CancelRequest(ctx); err != nil {
		t.Fatalf("cancel request: %v", err)
	}
	select {
	case err := <-res:
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
			t.Fatalf("cancelled query returned %v; want query_canceled (57014)", err)
		}
		t.Logf("cancelled after %v", time.Since(began).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("pg_sleep(30) was not cancelled")
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("session after cancel: %v", err)
	}
}
