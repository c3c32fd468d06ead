package engine_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/enginetest"
	"github.com/pgtwin/pgtwin/internal/config"
)

func TestCloneMissingSource(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "copy", t.TempDir())
	if err := f.e.Clone(ctx, "no-such-snap", "c"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("clone of a missing snapshot: got %v, want ErrNotFound", err)
	}
	mustNotExist(t, f, "c")
	if err := f.e.Snapshot(ctx, "no-such-volume", "s"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("snapshot of a missing volume: got %v, want ErrNotFound", err)
	}
	mustNotExist(t, f, "s")
	if _, err := f.e.Start(ctx, "c", engine.InstanceSpec{Port: 16500}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("start of a missing volume: got %v, want ErrNotFound", err)
	}
	if err := f.e.Clone(ctx, "../etc", "c"); !errors.Is(err, engine.ErrInvalidID) {
		t.Fatalf("clone from ../etc: got %v, want ErrInvalidID", err)
	}
	if ids, err := f.e.Recover(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("recover after failed calls: %v %v, want nothing", ids, err)
	}
}

func TestNoFreePort(t *testing.T) {
	// Occupy two adjacent ports and make them the whole range.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var low int
	for try := 0; try < 50 && low == 0; try++ {
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l1.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(p+1)))
		if err != nil {
			l1.Close()
			continue
		}
		ls, low = append(ls, l1, l2), p
	}
	if low == 0 {
		t.Fatal("could not occupy two adjacent ports")
	}
	cfg := engineConfig()
	cfg.PortRange = config.PortRange{Low: low, High: low + 1}
	e := newEngineWith(t, cfg)
	if p, err := e.AllocatePort(nil); !errors.Is(err, engine.ErrNoFreePort) {
		t.Fatalf("allocate from an occupied range: got %d, %v; want ErrNoFreePort", p, err)
	}
	// A port the caller has given out counts as taken even when bindable.
	ls[1].Close()
	if p, err := e.AllocatePort(nil); err != nil || p != low+1 {
		t.Fatalf("allocate after freeing %d: got %d, %v", low+1, p, err)
	}
	if p, err := e.AllocatePort(map[int]bool{low + 1: true}); !errors.Is(err, engine.ErrNoFreePort) {
		t.Fatalf("allocate with the free port in use: got %d, %v; want ErrNoFreePort", p, err)
	}
}

func TestNoPostgres(t *testing.T) {
	cfg := engineConfig()
	cfg.PostgresBin = t.TempDir()
	d, err := openDriver(context.Background(), "copy", filepath.Join(t.TempDir(), "vol"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.New(context.Background(), engine.Options{Config: cfg, DataDir: t.TempDir(), Driver: d})
	if !errors.Is(err, engine.ErrNoPostgres) {
		t.Fatalf("engine with empty postgres_bin dir: got %v, want ErrNoPostgres", err)
	}
	if !strings.Contains(err.Error(), "engine.postgres_bin") || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("error does not say what to install or set: %v", err)
	}
}

func TestNoSpace(t *testing.T) {
	ctx := context.Background()
	t.Run("init", func(t *testing.T) {
		f := newFixture(t, "copy", enginetest.LoopFS(t, "ext4", 16<<20))
		err := f.e.InitVolume(ctx, "main", engine.InitOptions{})
		if !errors.Is(err, engine.ErrNoSpace) {
			t.Fatalf("init on a full filesystem: got %v, want ErrNoSpace", err)
		}
		t.Logf("init on a full filesystem: %v", err)
		mustNotExist(t, f, "main")
	})
	t.Run("clone", func(t *testing.T) {
		base := enginetest.LoopFS(t, "ext4", 128<<20)
		f := newFixture(t, "copy", base)
		f.init("main")
		enginetest.Fill(t, base, 1<<20)
		if err := f.e.Clone(ctx, "main", "c"); !errors.Is(err, engine.ErrNoSpace) {
			t.Fatalf("clone on a full filesystem: got %v, want ErrNoSpace", err)
		} else {
			t.Logf("clone on a full filesystem: %v", err)
		}
		mustNotExist(t, f, "c")
		if err := f.e.Snapshot(ctx, "main", "s"); !errors.Is(err, engine.ErrNoSpace) {
			t.Fatalf("snapshot on a full filesystem: got %v, want ErrNoSpace", err)
		}
		mustNotExist(t, f, "s")
	})
}

func newEngineWith(t testing.TB, cfg config.Engine) *engine.Engine {
	t.Helper()
	base := t.TempDir()
	reach(t, base)
	d, err := openDriver(context.Background(), "copy", filepath.Join(base, "vol"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(context.Background(), engine.Options{Config: cfg, DataDir: filepath.Join(base, "d"), Driver: d, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
