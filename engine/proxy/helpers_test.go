package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine/proxy"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// appRole is the login the tests use through the proxy; "postgres" is the
// superuser the proxy refuses.
const appRole = "app"

// pgBackend is a real postmaster on a pgtest cluster's data directory that
// the proxy can start; it counts starts. The cluster's own process is
// stopped at setup so that this backend owns the instance.
type pgBackend struct {
	*proxy.Waker
	c      *pgtest.Cluster
	cred   *syscall.Credential
	starts atomic.Int32
	// listen, if set, replaces the cluster's listen_addresses.
	listen string

	mu   sync.Mutex
	proc *os.Process
	done chan struct{}
}

func newBackend(t testing.TB) *pgBackend {
	t.Helper()
	c := pgtest.Start(t, pgtest.Options{})
	c.Exec(t, "postgres", "CREATE ROLE "+appRole+" LOGIN")
	c.Exec(t, "postgres", "CREATE DATABASE "+appRole+" OWNER "+appRole)
	c.Stop()
	b := &pgBackend{c: c, cred: pgtest.Credential(t, "postgres")}
	b.Waker = proxy.NewWaker(b.start, time.Minute)
	t.Cleanup(b.stop)
	return b
}

func (b *pgBackend) socket() string {
	return filepath.Join(b.c.Dir, ".s.PGSQL."+strconv.Itoa(b.c.Port))
}

func (b *pgBackend) running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runningLocked()
}

func (b *pgBackend) runningLocked() bool {
	if b.done == nil {
		return false
	}
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// start runs the postmaster unless it runs, and returns once it is ready.
func (b *pgBackend) start(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runningLocked() {
		return b.socket(), nil
	}
	b.starts.Add(1)
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(b.c.Dir), "backend.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	args := []string{"-D", b.c.Dir, "-p", strconv.Itoa(b.c.Port)}
	if b.listen != "" {
		args = append(args, "-c", "listen_addresses="+b.listen)
	}
	cmd := exec.Command(filepath.Join(b.c.Bin, "postgres"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: b.cred, Setsid: true}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.proc, b.done = cmd.Process, done

	// postmaster.pid's status line turns "ready" once it accepts connections.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return "", fmt.Errorf("postgres exited at start")
		case <-ctx.Done():
			return "", ctx.Err()
		case <-tick.C:
		}
		pid, err := os.ReadFile(filepath.Join(b.c.Dir, "postmaster.pid"))
		if err != nil {
			continue
		}
		if lines := strings.Split(string(pid), "\n"); len(lines) > 7 && strings.TrimSpace(lines[7]) == "ready" {
			return b.socket(), nil
		}
	}
}

// stop shuts the postmaster down (fast mode) and waits for it.
func (b *pgBackend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.runningLocked() {
		return
	}
	b.proc.Signal(syscall.SIGINT)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.proc.Kill()
		<-b.done
	}
}

// failBackend is an instance that cannot start.
type failBackend struct{ err error }

func (f failBackend) Wake(context.Context) (string, error) { return "", f.err }

func startProxy(t testing.TB, b proxy.Backend, opts proxy.Options) *proxy.Proxy {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	opts.Backend = b
	if opts.RefuseUser == "" {
		opts.RefuseUser = "postgres"
	}
	opts.Name = `branch "test"`
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	p := proxy.New(opts)
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

func proxyPort(p *proxy.Proxy) string {
	_, port, _ := strings.Cut(p.Addr().String(), ":")
	return port
}

func proxyURL(p *proxy.Proxy, user, sslmode string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%s/%s?sslmode=%s", user, proxyPort(p), appRole, sslmode)
}

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// psql runs psql against the proxy with extra libpq settings in env and
// returns stdout, stderr and the exit code.
func psql(t testing.TB, p *proxy.Proxy, user, sql string, env ...string) (string, string, int) {
	t.Helper()
	bin := pgtest.BinDir()
	if bin == "" {
		t.Fatal("psql not found: install postgresql")
	}
	cmd := exec.Command(filepath.Join(bin, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", proxyPort(p), "-U", user, "-d", appRole, "-c", sql)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=60")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run psql: %v", err)
	}
	return strings.TrimSpace(out.String()), strings.TrimSpace(errb.String()), code
}

// eventually polls cond for up to 10s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
