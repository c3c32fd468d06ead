package engine_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/engine"
)

// NoTCP leaves the port to the daemon's proxy: the instance answers on its
// unix socket only, and an instance an older daemon started on TCP is
// restarted off it when adopted with NoTCP.
func TestStartNoTCP(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "copy", t.TempDir())
	f.init("b")
	inst := f.start("b") // on TCP, as before
	port := inst.Port
	if !tcpListens(port) {
		t.Fatalf("instance started with TCP does not listen on %d", port)
	}
	oldPID := inst.PID

	inst, err := f.e.Start(ctx, "b", engine.InstanceSpec{Port: port, NoTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	if inst.PID == oldPID {
		t.Fatal("an instance listening on TCP was adopted as it was under NoTCP")
	}
	if tcpListens(port) {
		t.Fatalf("NoTCP instance listens on TCP port %d", port)
	}
	c := connect(t, inst)
	if n := queryInt(t, c, "SELECT 1"); n != 1 {
		t.Fatalf("unix socket query: %d", n)
	}
	// Adopting it again keeps it.
	again, err := f.e.Start(ctx, "b", engine.InstanceSpec{Port: port, NoTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.PID != inst.PID {
		t.Fatalf("NoTCP instance restarted on adoption: pid %d -> %d", inst.PID, again.PID)
	}
}

func tcpListens(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
