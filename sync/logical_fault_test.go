package twinsync

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
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

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// childEnv carries a follower's settings to the test binary re-executed as
// a child process, which the test kills with SIGKILL.
const childEnv = "PGTWIN_LOGICAL_CHILD"

type childConfig struct {
	Source, Target, Spill string
	Exclude               []string
	// DieAt makes the child kill itself with SIGKILL the DieAfter-th time
	// it passes the fault point DieAt ("commit": twin committed, not yet
	// acknowledged; "stream": inside a streamed transaction).
	DieAt    string
	DieAfter int
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runFollowerChild(cfg))
	}
	os.Exit(m.Run())
}

// runFollowerChild follows until killed.
func runFollowerChild(cfgJSON string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rules, err := anonymize.ParseRules(logicalRuleMap)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sel := selection{ExcludeTables: cfg.Exclude}
	f := &follower{
		Source:           source{URL: cfg.Source},
		Selection:        sel,
		Plan:             anonymizePlan(rules, anonymize.PolicyMask, testKey, sel),
		TargetConn:       func(context.Context) (string, error) { return cfg.Target, nil },
		SpillDir:         cfg.Spill,
		SpillMemory:      128 << 10,
		SequenceInterval: time.Second,
		StatusInterval:   time.Second,
		Backoff:          backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond, Attempts: 5},
		Log:              zerolog.New(os.Stderr),
	}
	if cfg.DieAt != "" {
		n := 0
		f.fault = func(point string) {
			if point == cfg.DieAt {
				if n++; n >= cfg.DieAfter {
					fmt.Fprintln(os.Stderr, "child: dying at", point)
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
			}
		}
	}
	if err := f.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		time.Sleep(500 * time.Millisecond)
		if st := f.Status(); st.State == stateFailed || st.State == stateNeedsResync {
			fmt.Fprintln(os.Stderr, "follower:", st.State, st.LastError)
			return 1
		}
	}
}

// proxy forwards TCP to a server and can cut every connection at once.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func startProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) serve(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go func() { io.Copy(s, c); s.Close(); c.Close() }()
	io.Copy(c, s)
	c.Close()
	s.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// cut drops every connection through the proxy.
func (p *proxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		c.Close()
	}
	return n / 2
}

// The follower is killed with SIGKILL at random points, the twin is
// stopped in immediate mode, the source restarted and the connection cut,
// while the source keeps writing; after each fault it resumes, and at the
// end the twin equals the masked source, with the append-only table
// complete: nothing lost, nothing applied twice.
func TestLogicalFaults(t *testing.T) {
	trials := 20
	if s := os.Getenv("PGTWIN_FAULT_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("PGTWIN_FAULT_TRIALS=%q: %v", s, err)
		}
		trials = n
	}
	ctx := context.Background()
	e := newLogicalEnv(t, 200)
	px := startProxy(t, fmt.Sprintf("127.0.0.1:%d", e.src.Port))
	e.srcURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/app?sslmode=disable", px.port())

	// Fill main in-process, then hand following to child processes.
	f := e.follower()
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitState(t, f, stateStreaming, 2*time.Minute)
	f.Stop()

	base := childConfig{Source: e.srcURL, Target: e.tgt.ConnString("app"), Spill: e.spill, Exclude: e.sel.ExcludeTables}
	logPath := filepath.Join(t.TempDir(), "child.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	startChild := func(cc childConfig) *exec.Cmd {
		cfg, _ := json.Marshal(cc)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	// The source keeps writing: small transactions, big streamed ones,
	// updates of masked columns, deletes; failures during a source restart
	// are retried on a new connection.
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		var conn *pgx.Conn
		for i := 0; ; i++ {
			select {
			case <-stop:
				if conn != nil {
					conn.Close(ctx)
				}
				return
			default:
			}
			if conn == nil {
				c, err := pgx.Connect(ctx, e.src.ConnString("app"))
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				conn = c
			}
			var sql string
			switch r := rng.IntN(100); {
			case r < 3:
				sql = fmt.Sprintf("INSERT INTO seqlog (batch) SELECT %d FROM generate_series(1, 2000)", i)
			case r < 6:
				sql = fmt.Sprintf(`BEGIN; INSERT INTO seqlog (batch) SELECT %d FROM generate_series(1, 1500); SAVEPOINT s;
					INSERT INTO seqlog (batch) SELECT -1 FROM generate_series(1, 1000); ROLLBACK TO s; COMMIT`, i)
			case r < 20:
				sql = fmt.Sprintf(`UPDATE customers SET full_name = 'Renamed %d', phone = NULL WHERE id = %d`, i, 1+rng.IntN(200))
			case r < 25:
				sql = fmt.Sprintf(`UPDATE toasty SET counter = counter + 1 WHERE id = %d`, 1+rng.IntN(20))
			default:
				sql = fmt.Sprintf("INSERT INTO seqlog (batch) SELECT %d FROM generate_series(1, %d)", i, 1+rng.IntN(50))
			}
			if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				conn.Close(ctx)
				conn = nil
				continue
			}
			writes.Add(1)
			time.Sleep(time.Duration(1+rng.IntN(5)) * time.Millisecond)
		}
	})

	rng := rand.New(rand.NewPCG(3, 4))
	kinds := map[string]int{}
	for i := range trials {
		cc := base
		switch i % 6 {
		case 1:
			cc.DieAt, cc.DieAfter = "commit", 1+rng.IntN(40)
		case 5:
			cc.DieAt, cc.DieAfter = "stream", 1+rng.IntN(5000)
		}
		cmd := startChild(cc)
		time.Sleep(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
		kind := "kill -9"
		if cc.DieAt != "" {
			kind = "kill -9 at " + cc.DieAt
		}
		switch i % 6 {
		case 2:
			kind = "twin immediate stop"
			e.tgt.Restart(t, true)
		case 3:
			kind = "connection cut"
			px.cut()
		case 4:
			kind = "source restart"
			e.src.Restart(t, false)
		}
		if kind != "kill -9" {
			time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		kinds[kind]++
	}
	close(stop)
	wg.Wait()
	t.Logf("%d trials %v, %d source transactions", trials, kinds, writes.Load())

	// A last child catches up past a barrier, acknowledging it.
	catchUp := time.Now()
	cmd := startChild(base)
	defer func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() }()
	lsn := barrier(t, e.src)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var s string
		conn := textConn(t, e.src)
		if err := conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'pgtwin'").Scan(&s); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		if c, _ := pgoutput.ParseLSN(s); c >= lsn {
			break
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("the follower did not pass barrier %s (confirmed %s); child log tail:\n%s", lsn, s, tail(string(b), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("caught up in %s", time.Since(catchUp).Round(time.Millisecond))
	if os.Getenv("PGTWIN_TEST_LOG") == "1" {
		b, _ := os.ReadFile(logPath)
		t.Logf("child log:\n%s", tail(string(b), 6000))
	}
	e.equal()
	b, _ := os.ReadFile(logPath)
	if n := strings.Count(string(b), "streaming from the source"); n < trials/2 {
		t.Errorf("children streamed %d times in %d trials: the faults hit nothing", n, trials)
	}
	t.Logf("children killed themselves %d times after a twin commit before its ack, %d times inside a streamed transaction",
		strings.Count(string(b), "dying at commit"), strings.Count(string(b), "dying at stream"))
	src := query[string](t, e.src, "SELECT count(*) || '/' || count(DISTINCT id) || '/' || coalesce(sum(id), 0) FROM seqlog")
	twin := query[string](t, e.tgt, "SELECT count(*) || '/' || count(DISTINCT id) || '/' || coalesce(sum(id), 0) FROM seqlog")
	if src != twin {
		t.Errorf("seqlog rows/distinct/sum: source %s, twin %s", src, twin)
	}
	if n := query[int64](t, e.tgt, "SELECT count(*) FROM seqlog WHERE batch = -1"); n != 0 {
		t.Errorf("%d rows of rolled-back subtransactions in the twin", n)
	}
	if left, _ := filepath.Glob(filepath.Join(e.spill, "stream-*")); len(left) > 1 {
		t.Errorf("spill files pile up after kills: %v", left)
	}
	for _, needle := range []string{"user17@example.com", "4111 1111"} {
		if strings.Contains(string(b), needle) {
			t.Errorf("the child's log contains %q", needle)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
