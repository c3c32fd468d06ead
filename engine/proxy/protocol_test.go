package proxy_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/engine/proxy"
)

var netDialer = net.Dialer{Timeout: time.Second}

func packet(code uint32, body ...byte) []byte {
	b := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint32(b[0:4], uint32(8+len(body)))
	binary.BigEndian.PutUint32(b[4:8], code)
	return append(b, body...)
}

func startupPacket(kv ...string) []byte {
	var body []byte
	for _, s := range kv {
		body = append(body, s...)
		body = append(body, 0)
	}
	return packet(3<<16, append(body, 0)...)
}

func dialProxy(t *testing.T, p *proxy.Proxy) net.Conn {
	t.Helper()
	c, err := netDialer.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// readError reads one ErrorResponse and returns its fields.
func readError(t *testing.T, r io.Reader) map[byte]string {
	t.Helper()
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("read ErrorResponse: %v", err)
	}
	if hdr[0] != 'E' {
		t.Fatalf("got message %q, want ErrorResponse", hdr[0])
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	fields := map[byte]string{}
	for len(body) > 1 {
		k := body[0]
		v, rest, _ := strings.Cut(string(body[1:]), "\x00")
		fields[k] = v
		body = []byte(rest)
	}
	return fields
}

func expectEOF(t *testing.T, c net.Conn) {
	t.Helper()
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("want the proxy to close: read %d bytes, %v", n, err)
	}
}

func TestNegotiation(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b, proxy.Options{StartupTimeout: 300 * time.Millisecond})

	t.Run("ssl and gss declined then startup", func(t *testing.T) {
		c := dialProxy(t, p)
		r := bufio.NewReader(c)
		for _, code := range []uint32{80877104, 80877103} {
			c.Write(packet(code))
			if ans, err := r.ReadByte(); err != nil || ans != 'N' {
				t.Fatalf("encryption request %d: answer %q, %v", code, ans, err)
			}
		}
		c.Write(startupPacket("user", appRole, "database", appRole))
		// Trust authentication: AuthenticationOk ('R', int32 8, int32 0).
		var auth [9]byte
		if _, err := io.ReadFull(r, auth[:]); err != nil || auth[0] != 'R' || binary.BigEndian.Uint32(auth[5:]) != 0 {
			t.Fatalf("after startup: %q, %v; want AuthenticationOk", auth, err)
		}
	})

	t.Run("protocol 2 refused", func(t *testing.T) {
		c := dialProxy(t, p)
		c.Write(packet(2<<16, 0))
		f := readError(t, c)
		if f['C'] != "0A000" || f['S'] != "FATAL" || !strings.Contains(f['M'], "unsupported frontend protocol 2.0") {
			t.Fatalf("fields %q", f)
		}
		expectEOF(t, c)
	})

	t.Run("oversized packet closed", func(t *testing.T) {
		c := dialProxy(t, p)
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], 1<<30)
		c.Write(hdr[:])
		expectEOF(t, c)
	})

	t.Run("silent client timed out", func(t *testing.T) {
		c := dialProxy(t, p)
		expectEOF(t, c)
		eventually(t, "Active to reach 0", func() bool { return p.Active() == 0 })
	})
}

func TestCancelDoesNotWake(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b, proxy.Options{})

	// Before any wake the proxy knows no instance: the cancel is dropped.
	c := dialProxy(t, p)
	c.Write(packet(80877102, 0, 0, 0, 1, 0, 0, 0, 2))
	expectEOF(t, c)
	if b.starts.Load() != 0 || b.running() {
		t.Fatal("a cancel request woke the backend")
	}

	// After a wake and a stop, the cancel goes nowhere and wakes nothing.
	connect(t, proxyURL(p, appRole, "disable")).Close(context.Background())
	b.stop()
	c = dialProxy(t, p)
	c.Write(packet(80877102, 0, 0, 0, 1, 0, 0, 0, 2))
	expectEOF(t, c)
	if b.starts.Load() != 1 || b.running() {
		t.Fatalf("a cancel request to a stopped backend woke it (starts=%d)", b.starts.Load())
	}
	if st := p.Stats(); st.Cancels != 2 {
		t.Fatalf("stats %+v; want 2 cancels", st)
	}
}
