package engine_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/pgtwin/pgtwin/engine"
)

// InNetNS reruns the calling test alone in a fresh network namespace (so it
// never touches the host's nftables ruleset) and reports whether this is the
// run inside it. The outer run fails if the inner one does.
func inNetNS(t *testing.T) bool {
	t.Helper()
	if os.Getenv("PGTWIN_NETNS") == t.Name() {
		return true
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare not found: install util-linux (the test runs in its own network namespace)")
	}
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", `ip link set lo up && exec "$@"`, "sh",
		os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "PGTWIN_NETNS="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("in a network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("run in a network namespace: %v", err)
	}
	return false
}

// serveWord answers every connection on addr with word.
func serveWord(t *testing.T, addr, word string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.Write([]byte(word + "\n"))
				bufio.NewReader(c).ReadString('\n') // hold it open until the client goes
				c.Close()
			}()
		}
	}()
}

func TestRedirectSwitchesNewConnectionsOnly(t *testing.T) {
	if !inNetNS(t) {
		return
	}
	r, err := engine.NewRedirect("127.0.0.1")
	if err != nil {
		t.Fatalf("nftables in a fresh namespace: %v", err)
	}
	defer r.Close()
	const port = 6543
	p := strconv.Itoa(port)
	serveWord(t, "127.0.0.1:"+p, "daemon")
	serveWord(t, r.Internal()+":"+p, "postmaster")
	dial := func() (net.Conn, string) {
		c, err := net.Dial("tcp", "127.0.0.1:"+p)
		if err != nil {
			t.Fatal(err)
		}
		w, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return c, w[:len(w)-1]
	}
	c1, w := dial()
	if w != "daemon" {
		t.Fatalf("before On: reached %s", w)
	}
	if err := r.On(port); err != nil {
		t.Fatal(err)
	}
	c2, w := dial()
	if w != "postmaster" {
		t.Fatalf("after On: reached %s", w)
	}
	if n, _ := r.Conns(); n[port] != 1 {
		t.Fatalf("Conns = %v, want 1 on %d", n, port)
	}
	if err := r.Off(port); err != nil {
		t.Fatal(err)
	}
	if err := r.Off(port); err != nil {
		t.Fatalf("second Off: %v", err)
	}
	c3, w := dial()
	if w != "daemon" {
		t.Fatalf("after Off: reached %s", w)
	}
	// Established connections keep their path both ways.
	for _, c := range []net.Conn{c1, c2, c3} {
		if _, err := c.Write([]byte("x\n")); err != nil {
			t.Fatalf("established connection broke: %v", err)
		}
		c.Close()
	}
}
