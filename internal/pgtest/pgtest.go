package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options shape a cluster. The zero value is a plain cluster.
type Options struct {
	// Logical sets wal_level=logical and room for slots, for a replication source.
	Logical bool
	// Settings are extra postgresql.conf settings.
	Settings map[string]string
	// Databases are created after start (besides "postgres").
	Databases []string
	// User runs the cluster; default "postgres".
	User string
	// SCRAM makes every role but the superuser postgres log in over TCP
	// with a scram-sha-256 password (password_encryption too), as a
	// production source does; postgres keeps trust so the test can set up.
	SCRAM bool
}

// Cluster is a running test cluster.
type Cluster struct {
	Dir  string // data directory
	Port int
	Bin  string // directory of the PostgreSQL binaries

	cred *syscall.Credential
	proc *os.Process
	done chan struct{}
}

// BinDir finds the newest PostgreSQL server binaries, or "" if none.
func BinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(r)
		}
	}
	return ""
}

func major(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Credential returns the uid/gid of an OS user, failing the test if absent.
func Credential(t testing.TB, name string) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("pgtest: OS user %q is missing (install postgresql, which creates it): %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// Start runs initdb and starts a cluster; it is stopped and removed when the
// test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		t.Fatal("pgtest: PostgreSQL server binaries not found (apt-get install postgresql; `make test` does this)")
	}
	if opts.User == "" {
		opts.User = "postgres"
	}
	c := &Cluster{Bin: bin, cred: Credential(t, opts.User)}

	// t.TempDir is root-only; the cluster's user needs its own directory.
	root, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chown(root, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c.Dir = filepath.Join(root, "data")

	c.run(t, filepath.Join(bin, "initdb"), "-D", c.Dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")

	conf := map[string]string{
		"listen_addresses":        "'127.0.0.1'",
		"unix_socket_directories": "'" + c.Dir + "'",
		"fsync":                   "off",
		"max_connections":         "100",
		"shared_buffers":          "64MB",
	}
	if opts.Logical {
		conf["wal_level"] = "logical"
		conf["max_replication_slots"] = "10"
		conf["max_wal_senders"] = "10"
	}
	if opts.SCRAM {
		conf["password_encryption"] = "'scram-sha-256'"
	}
	for k, v := range opts.Settings {
		conf[k] = v
	}
	var b strings.Builder
	for k, v := range conf {
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	f, err := os.OpenFile(filepath.Join(c.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	f.WriteString(b.String())
	f.Close()
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\nlocal replication all trust\nhost replication all 127.0.0.1/32 trust\n"
	if opts.SCRAM {
		hba = "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n" +
			"local replication all trust\nhost replication postgres 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 scram-sha-256\n"
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	c.Port = FreePort(t)
	if err := c.start(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.Stop)
	for _, db := range opts.Databases {
		c.Exec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	}
	return c
}

func (c *Cluster) run(t testing.TB, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: %s: %v\n%s", filepath.Base(argv[0]), err, out)
	}
}

func (c *Cluster) start() error {
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(c.Dir), "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(c.Bin, "postgres"), "-D", c.Dir, "-p", strconv.Itoa(c.Port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setsid: true}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.proc = cmd.Process
	c.done = make(chan struct{})
	go func() { cmd.Wait(); close(c.done) }()

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return fmt.Errorf("postgres exited at start; log:\n%s", c.Log())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("postgres not ready after 30s; log:\n%s", c.Log())
}

// Log returns the server log.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(c.Dir), "postgres.log"))
	return string(b)
}

// ConnString is a URL for database db as the superuser over TCP.
func (c *Cluster) ConnString(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// Running reports whether the postmaster is up.
func (c *Cluster) Running() bool {
	if c.done == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Stop shuts the cluster down (immediate mode); calling it twice is fine.
func (c *Cluster) Stop() {
	if !c.Running() {
		return
	}
	c.proc.Signal(syscall.SIGQUIT)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.proc.Kill()
		<-c.done
	}
}

// Restart stops the cluster (fast mode, or immediate if immediate) and starts
// it again on the same port.
func (c *Cluster) Restart(t testing.TB, immediate bool) {
	t.Helper()
	if c.Running() {
		sig := syscall.SIGINT
		if immediate {
			sig = syscall.SIGQUIT
		}
		c.proc.Signal(sig)
		<-c.done
	}
	if err := c.start(); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
}

// Connect opens a pgx connection to db, closed when the test ends.
func (c *Cluster) Connect(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.ConnString(db))
	if err != nil {
		t.Fatalf("pgtest: connect %s: %v", db, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs SQL (one or more statements, simple protocol) in db.
func (c *Cluster) Exec(t testing.TB, db, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.ConnString(db))
	if err != nil {
		t.Fatalf("pgtest: connect %s: %v", db, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("pgtest: exec in %s: %v\nSQL: %.500s", db, err, sql)
	}
}

// Psql runs psql -At with the script on stdin and returns its output.
func (c *Cluster) Psql(t testing.TB, db, script string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(c.Bin, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "postgres", "-d", db)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pgtest: psql in %s: %v\n%s", db, err, out)
	}
	return strings.TrimSpace(string(out))
}
