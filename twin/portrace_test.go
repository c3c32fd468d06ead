package twin

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/twin/api"
)

// squatter is the real engine with one race made certain: after
// AllocatePort probes a free port, another program binds it before the
// branch's listener opens, as CI once saw among 300 parallel creates.
type squatter struct {
	*engine.Engine
	mu    sync.Mutex
	armed bool
	held  []net.Listener
}

var _ Engine = (*squatter)(nil)

func (s *squatter) AllocatePort(inUse map[int]bool) (int, error) {
	p, err := s.Engine.AllocatePort(inUse)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || !s.armed {
		return p, err
	}
	s.armed = false
	l, lerr := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if lerr != nil {
		return 0, lerr
	}
	s.held = append(s.held, l)
	return p, nil
}

// TestCreateMovesOffATakenPort: a port taken in that window moves the new
// branch to another one instead of failing the create, and the branch
// answers on the port it reports.
func TestCreateMovesOffATakenPort(t *testing.T) {
	t.Parallel()
	f := newFx(t, "copy", nil)
	ctx := context.Background()
	f.tw.Stop()
	sq := &squatter{Engine: f.eng}
	t.Cleanup(func() {
		for _, l := range sq.held {
			l.Close()
		}
	})
	var err error
	f.tw, err = New(ctx, Options{Config: f.cfg, Engine: sq, Logger: testLogger(), SweepInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.tw.Start(ctx); err != nil {
		t.Fatal(err)
	}

	sq.mu.Lock()
	sq.armed = true
	sq.mu.Unlock()
	b := f.create(alice, api.CreateBranchRequest{Name: "dev/moved"})
	if len(sq.held) != 1 {
		t.Fatalf("the squatter holds %d ports, want 1: the create never allocated through it", len(sq.held))
	}
	taken := sq.held[0].Addr().(*net.TCPAddr).Port
	if b.Port == taken {
		t.Fatalf("branch reports port %d, which another program holds", b.Port)
	}
	if rec := f.record("dev/moved"); rec.Port != b.Port {
		t.Fatalf("record has port %d, the API said %d", rec.Port, b.Port)
	}
	wantInts(t, "query over the moved port", ints(t, dial(t, b.ConnectionURI), "SELECT 1"), 1)

	// After a restart the branch keeps its new port.
	f.restart()
	if rec := f.record("dev/moved"); rec.Port != b.Port {
		t.Fatalf("after restart the record has port %d, want %d", rec.Port, b.Port)
	}
}
