package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/config"
)

// reach lets the unprivileged postgres user walk down to dir (t.TempDir
// makes 0700 directories).
func reach(t testing.TB, dir string) {
	t.Helper()
	for p := filepath.Clean(dir); p != "/"; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testLogger(t testing.TB) zerolog.Logger {
	if os.Getenv("PGTWIN_TEST_LOG") != "" {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	}
	return zerolog.Nop()
}

func engineConfig() config.Engine {
	c := config.DefaultConfig().Engine
	c.PortRange = config.PortRange{Low: 16500, High: 16999}
	return c
}

// fixture is an engine on a driver rooted at root, with its data dir beside.
type fixture struct {
	t       testing.TB
	e       *engine.Engine
	drv     string
	root    string
	dataDir string
	ports   map[int]bool
}

// newFixture opens driver drv ("btrfs", "reflink", "copy") in base (a
// directory on a suitable filesystem) and an engine over it.
func newFixture(t testing.TB, drv, base string) *fixture {
	t.Helper()
	reach(t, base)
	f := &fixture{t: t, drv: drv, root: filepath.Join(base, "vol"), dataDir: filepath.Join(base, "d"), ports: map[int]bool{}}
	f.e = f.open(nil)
	t.Cleanup(func() { f.stopAll() })
	return f
}

func (f *fixture) open(hook func(string)) *engine.Engine {
	f.t.Helper()
	e, err := openEngine(context.Background(), f.drv, f.root, f.dataDir, hook, testLogger(f.t))
	if err != nil {
		f.t.Fatalf("open engine: %v", err)
	}
	return e
}

func openEngine(ctx context.Context, drv, root, dataDir string, hook func(string), log zerolog.Logger) (*engine.Engine, error) {
	d, err := openDriver(ctx, drv, root)
	if err != nil {
		return nil, err
	}
	return engine.New(ctx, engine.Options{Config: engineConfig(), DataDir: dataDir, Driver: d, Logger: log, StepHook: hook})
}

// stopAll stops every instance so loop filesystems can be unmounted.
func (f *fixture) stopAll() {
	ids, _ := f.e.Volumes(context.Background())
	for _, id := range ids {
		if _, ok := f.e.Instance(id); ok {
			if err := f.e.Stop(context.Background(), id); err != nil {
				f.t.Errorf("stop %s: %v", id, err)
			}
		}
	}
}

func (f *fixture) init(id string) {
	f.t.Helper()
	if err := f.e.InitVolume(context.Background(), id, engine.InitOptions{}); err != nil {
		f.t.Fatalf("init %s: %v", id, err)
	}
}

func (f *fixture) start(id string) *engine.Instance {
	f.t.Helper()
	port, err := f.e.AllocatePort(f.ports)
	if err != nil {
		f.t.Fatal(err)
	}
	f.ports[port] = true
	inst, err := f.e.Start(context.Background(), id, engine.InstanceSpec{Port: port, Settings: map[string]string{"shared_buffers": "32MB", "fsync": "on"}})
	if err != nil {
		f.t.Fatalf("start %s: %v", id, err)
	}
	return inst
}

func connect(t testing.TB, inst *engine.Instance) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The tests act as a user here, not as the daemon: they want public
	// on the search_path that ConnString pins to pg_catalog.
	c, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, "postgres")+" options='-c search_path=public'")
	if err != nil {
		t.Fatalf("connect to %s: %v", inst.ID, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func exec1(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryInt(t testing.TB, c *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// pgTool runs a client program of the engine's PostgreSQL against inst.
func pgTool(ctx context.Context, e *engine.Engine, inst *engine.Instance, name string, args ...string) *exec.Cmd {
	base := []string{"-h", inst.SocketDir, "-p", strconv.Itoa(inst.Port), "-U", inst.Superuser}
	cmd := exec.CommandContext(ctx, filepath.Join(e.BinDir(), name), append(base, args...)...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=30")
	return cmd
}

func runTool(t testing.TB, e *engine.Engine, inst *engine.Instance, name string, args ...string) string {
	t.Helper()
	out, err := pgTool(context.Background(), e, inst, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func mustNotExist(t testing.TB, f *fixture, id string) {
	t.Helper()
	ids, err := f.e.Volumes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if contains(ids, id) {
		t.Fatalf("volume %s left behind (volumes %v)", id, ids)
	}
	if _, err := os.Lstat(f.e.Driver().Path(id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume %s left behind at %s (%v)", id, f.e.Driver().Path(id), err)
	}
	ents, _ := os.ReadDir(filepath.Join(f.dataDir, "engine", "journal"))
	if len(ents) > 0 {
		t.Fatalf("journal not empty: %v", ents)
	}
}

func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func itoa(n int) string { return fmt.Sprint(n) }
