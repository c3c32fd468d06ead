package proxy_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/engine/proxy"
)

// TestHalfClose sends a query and then the client's FIN at once, and reads
// the answer only later: the whole answer must still arrive, then EOF. The
// answer (about 20 MB) overflows the socket buffers, so the instance exits
// while the proxy still holds part of it and has not read the rest.
func TestHalfClose(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b, proxy.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pc, err := pgconn.Connect(ctx, proxyURL(p, appRole, "disable"))
	if err != nil {
		t.Fatal(err)
	}
	hj, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	c := hj.Conn.(*net.TCPConn)
	defer c.Close()
	const n = 20000
	sql := fmt.Sprintf("SELECT repeat('x', 1000) FROM generate_series(1, %d)", n)
	msg := binary.BigEndian.AppendUint32([]byte{'Q'}, uint32(4+len(sql)+1))
	msg = append(append(msg, sql...), 0)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReaderSize(c, 64<<10)
	counts := map[byte]int{}
	var tag string
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("after %v messages: %v", counts, err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatalf("after %v messages: %v", counts, err)
		}
		counts[hdr[0]]++
		if hdr[0] == 'C' {
			tag = string(body[:len(body)-1])
		}
	}
	if counts['D'] != n || tag != fmt.Sprintf("SELECT %d", n) || counts['Z'] != 1 {
		t.Fatalf("answer after the client's FIN: %d rows, tag %q, %d ReadyForQuery; want %d rows, SELECT %d, 1",
			counts['D'], tag, counts['Z'], n, n)
	}
}

// TestManyClientsShareLoops runs many sessions at once, which a few relay
// loops share, and then checks that Stop ends them all and leaves no loop,
// goroutine or descriptor behind.
func TestManyClientsShareLoops(t *testing.T) {
	b := newBackend(t)
	if _, err := b.Wake(context.Background()); err != nil {
		t.Fatal(err)
	}
	clients := envInt("PGTWIN_PROXY_CLIENTS", 24)
	eventually(t, "earlier tests' relay loops to end", func() bool { return proxy.Loops() == 0 })
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)

	p := startProxy(t, b, proxy.Options{CloseSessionsOnStop: true})
	ctx := context.Background()
	conns := make([]*pgx.Conn, clients)
	for i := range conns {
		c, err := pgx.Connect(ctx, proxyURL(p, appRole, "disable"))
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		conns[i] = c
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 30 {
				var got string
				want := fmt.Sprintf("%d-%d", i, j)
				if err := c.QueryRow(ctx, "SELECT $1::text || repeat('.', $2)", want, 100*j).Scan(&got); err != nil {
					errs <- fmt.Errorf("client %d query %d: %w", i, j, err)
					return
				}
				if got[:len(want)] != want || len(got) != len(want)+100*j {
					errs <- fmt.Errorf("client %d query %d: got %.20q…", i, j, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, most := proxy.Loops(), max(1, runtime.GOMAXPROCS(0)-1); n < 1 || n > most {
		t.Errorf("%d sessions ran on %d relay loops; want 1 to GOMAXPROCS-1 (%d)", clients, n, most)
	}
	if a := p.Active(); a != clients {
		t.Errorf("Active = %d; want %d", a, clients)
	}

	p.Stop()
	if a := p.Active(); a != 0 {
		t.Errorf("Active = %d after Stop", a)
	}
	for i, c := range conns {
		if _, err := c.Exec(ctx, "SELECT 1"); err == nil {
			t.Errorf("client %d still works after Stop", i)
		}
		c.Close(ctx)
	}
	eventually(t, "relay loops to end", func() bool { return proxy.Loops() == 0 })
	eventually(t, fmt.Sprintf("goroutines back to %d", goroutines), func() bool { return runtime.NumGoroutine() <= goroutines })
	eventually(t, fmt.Sprintf("descriptors back to %d", fds), func() bool { return openFDs(t) <= fds })
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
