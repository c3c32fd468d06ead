package twin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/btrfs"
	copydrv "github.com/pgtwin/pgtwin/engine/copy"
	"github.com/pgtwin/pgtwin/engine/enginetest"
	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/twin/api"
)

var (
	fxCount atomic.Int32
	alice   = Caller{UID: 41001, User: "alice"}
	bob     = Caller{UID: 41002, User: "bob"}
)

// fx is a twin on a real engine and storage driver, with real postgres.
type fx struct {
	t    testing.TB
	drv  string
	base string
	cfg  config.Config
	eng  *engine.Engine
	tw   *Twin
}

func testLogger() zerolog.Logger {
	if os.Getenv("PGTWIN_TEST_LOG") != "" {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	}
	return zerolog.Nop()
}

// newFx starts a twin on driver "btrfs" (a loop-mounted image) or "copy"
// (a temp dir). mod may change the config first.
func newFx(t testing.TB, drv string, mod func(*config.Config)) *fx {
	t.Helper()
	var base string
	switch drv {
	case "btrfs":
		base = enginetest.LoopFS(t, "btrfs", 1<<30)
	default:
		base = t.TempDir()
	}
	reach(t, base)
	cfg := config.DefaultConfig()
	cfg.Daemon.DataDir = filepath.Join(base, "d")
	sockDir, err := os.MkdirTemp("", "tw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cfg.Daemon.Socket = filepath.Join(sockDir, "pgtwin.sock")
	cfg.Daemon.AdminGroup = "pgtwin-test-nonexistent"
	cfg.Source.URL = "postgres://replicator@prod.internal:5432/app"
	// Tests run in parallel: each twin allocates from its own ports.
	k := int(fxCount.Add(1)) % 12
	cfg.Engine.PortRange = config.PortRange{Low: 17500 + 40*k, High: 17539 + 40*k}
	if mod != nil {
		mod(&cfg)
	}
	f := &fx{t: t, drv: drv, base: base, cfg: cfg}
	f.open(nil)
	t.Cleanup(f.teardown)
	if err := f.tw.Start(context.Background()); err != nil {
		t.Fatalf("start twin: %v", err)
	}
	return f
}

// open makes a fresh engine and twin over the same directories, as a
// restarted daemon would.
func (f *fx) open(hook func(string)) {
	f.t.Helper()
	ctx := context.Background()
	root := filepath.Join(f.base, "volumes")
	var d engine.Driver
	var err error
	switch f.drv {
	case "btrfs":
		d, err = btrfs.Open(ctx, root, testLogger())
	default:
		d, err = copydrv.Open(ctx, root, testLogger())
	}
	if err != nil {
		f.t.Fatalf("open %s driver: %v", f.drv, err)
	}
	f.eng, err = engine.New(ctx, engine.Options{Config: f.cfg.Engine, DataDir: f.cfg.Daemon.DataDir, Driver: d, Logger: testLogger(), StepHook: hook})
	if err != nil {
		f.t.Fatalf("engine: %v", err)
	}
	f.tw, err = New(ctx, Options{Config: f.cfg, Engine: f.eng, Logger: testLogger(), SweepInterval: 200 * time.Millisecond, DiskCapInterval: 200 * time.Millisecond})
	if err != nil {
		f.t.Fatalf("twin: %v", err)
	}
}

// restart stops the twin (instances keep running) and starts a new one.
func (f *fx) restart() {
	f.t.Helper()
	f.tw.Stop()
	f.open(nil)
	if err := f.tw.Start(context.Background()); err != nil {
		f.t.Fatalf("restart twin: %v", err)
	}
}

// teardown stops every instance so the loop filesystem can be unmounted.
func (f *fx) teardown() {
	f.tw.Stop()
	ids, _ := f.eng.Volumes(context.Background())
	for _, id := range ids {
		if _, ok := f.eng.Instance(id); ok {
			if err := f.eng.Stop(context.Background(), id); err != nil {
				f.t.Errorf("stop %s: %v", id, err)
			}
		}
	}
}

// reach lets the postgres user walk down to dir.
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

func (f *fx) create(c Caller, req api.CreateBranchRequest) api.Branch {
	f.t.Helper()
	b, err := f.tw.CreateBranch(context.Background(), c, req)
	if err != nil {
		f.t.Fatalf("create %s: %v", req.Name, err)
	}
	if b.State != api.StateReady || b.Port == 0 || b.ConnectionURI == "" {
		f.t.Fatalf("create %s: got %+v", req.Name, b)
	}
	return b
}

// mainExec runs sql in main's database as the owner role, as a sync would.
func (f *fx) mainExec(sql string) {
	f.t.Helper()
	ctx := context.Background()
	conn, err := f.tw.MainConn(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The daemon's sessions pin search_path to pg_catalog; the test's SQL
	// is a user's and names public's tables unqualified.
	if _, err := conn.Exec(ctx, "SET ROLE "+ownerRole+"; SET search_path = public; "+sql); err != nil {
		f.t.Fatalf("main: %s: %v", sql, err)
	}
}

func (f *fx) mainInts(sql string) []int64 {
	f.t.Helper()
	ctx := context.Background()
	conn, err := f.tw.MainConn(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET search_path = public"); err != nil {
		f.t.Fatal(err)
	}
	return ints(f.t, conn, sql)
}

// dial connects to a branch over TCP with its URL, as a developer would.
func dial(t testing.TB, uri string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("connect over TCP: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func exec(t testing.TB, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func ints(t testing.TB, c *pgx.Conn, sql string) []int64 {
	t.Helper()
	rows, err := c.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func wantInts(t testing.TB, what string, got []int64, want ...int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
}

func wantErr(t testing.TB, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got error %v, want %v", what, err, kind)
	}
	t.Logf("%s: %v", what, err)
}

func (f *fx) volumes() map[string]bool {
	f.t.Helper()
	ids, err := f.eng.Volumes(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func (f *fx) record(name string) branchRecord {
	f.t.Helper()
	f.tw.mu.Lock()
	defer f.tw.mu.Unlock()
	r := f.tw.branches[name]
	if r == nil {
		f.t.Fatalf("no record of branch %s", name)
	}
	return *r
}

func httpOnSocket(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}
