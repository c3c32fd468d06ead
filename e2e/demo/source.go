package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/internal/sample"
)

// source is the demo's stand-in for production: a cluster of its own.
type source struct {
	dir  string
	port int
	bin  string
}

func (s *source) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/shop?sslmode=disable", s.port)
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("the postgres OS user is missing (apt-get install postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func startSource(ctx context.Context, dir string, customers int) (*source, error) {
	bin := pgtest.BinDir()
	if bin == "" {
		return nil, fmt.Errorf("postgres binaries not found (apt-get install postgresql)")
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	s := &source{dir: filepath.Join(dir, "source"), bin: bin}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return nil, err
	}
	step("initdb the sample source in %s", s.dir)
	if err := runAs(cred, filepath.Join(bin, "initdb"), "-D", s.dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()

	logf, err := os.Create(filepath.Join(dir, "source.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", s.dir, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir,
		"-c", "wal_level=logical", "-c", "shared_buffers=128MB")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setsid: true}
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, "/"
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start source: %w", err)
	}
	go cmd.Wait()
	if err := waitConnect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)); err != nil {
		return nil, fmt.Errorf("source did not start (see %s): %w", logf.Name(), err)
	}

	step("fill it with %d customers and their addresses, orders and payments (fake, real-looking PII)", customers)
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port))
	if err != nil {
		return nil, err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE shop")
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	conn, err = pgx.Connect(ctx, s.url())
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	for _, sql := range []string{sample.Luhn + sample.Schema, sample.Data(customers)} {
		if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			return nil, fmt.Errorf("fill source: %w", err)
		}
	}
	return s, nil
}

func runAs(cred *syscall.Credential, argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(argv[0]), err, out)
	}
	return nil
}

func waitConnect(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, url)
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
