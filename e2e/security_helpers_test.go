package e2e

import (
	"bufio"
	"bytes"
	"context"
	endian "encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// bootstrapSuper is the superuser every cluster pgtwin makes (twin.superuser).
const bootstrapSuper = "pgtwin_super"

// neutralOptions override whatever a branch owner set with ALTER DATABASE or
// ALTER ROLE for the test's own superuser sessions: the test must not fall
// into the traps it plants.
const neutralOptions = "-c search_path=pg_catalog,pg_temp -c statement_timeout=0 -c lock_timeout=0" +
	" -c idle_in_transaction_session_timeout=0 -c idle_session_timeout=0 -c default_transaction_read_only=off" +
	" -c row_security=on -c standard_conforming_strings=on -c client_min_messages=warning -c local_preload_libraries="

// The test binary doubles as a probe that runs as another OS user: the
// daemon and PostgreSQL tell callers apart by their socket's peer
// credentials, which only a process of that user has. init runs before
// TestMain (which insists on root).
func init() {
	mode := os.Getenv("PGTWIN_E2E_PROBE")
	if mode == "" {
		return
	}
	os.Exit(probeMain(mode, os.Getenv("PGTWIN_E2E_PROBE_ARG")))
}

// probeMain: relay copies stdin to the unix socket arg and the answer to
// stdout; dial only connects; ls lists a directory; read reads a file.
// Exit 0 on success, 3 on failure (the error on stderr).
func probeMain(mode, arg string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	switch mode {
	case "relay", "dial":
		c, err := net.DialTimeout("unix", arg, 10*time.Second)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		if mode == "dial" {
			return 0
		}
		c.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.Copy(c, os.Stdin); err != nil {
			return fail(err)
		}
		c.(*net.UnixConn).CloseWrite()
		if _, err := io.Copy(os.Stdout, c); err != nil {
			return fail(err)
		}
		return 0
	case "ls":
		es, err := os.ReadDir(arg)
		if err != nil {
			return fail(err)
		}
		for _, e := range es {
			fmt.Println(e.Name())
		}
		return 0
	case "read":
		b, err := os.ReadFile(arg)
		if err != nil {
			return fail(err)
		}
		fmt.Printf("%d bytes\n", len(b))
		return 0
	}
	return fail(fmt.Errorf("unknown probe mode %q", mode))
}

// probeBinary is a copy of the test binary every OS user may run (the
// original sits in a 0700 build directory), made once per test.
func probeBinary(t *testing.T) string {
	t.Helper()
	probeMu.Lock()
	defer probeMu.Unlock()
	if p, ok := probeCopies[t]; ok {
		return p
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("probe binary: %v", err)
	}
	dir, err := os.MkdirTemp("", "pgtwin-e2e-probe-")
	if err != nil {
		t.Fatalf("probe binary: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatalf("probe binary: %v", err)
	}
	p := filepath.Join(dir, "probe")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatalf("copy the test binary for probes as other OS users: %v", err)
	}
	probeCopies[t] = p
	t.Cleanup(func() { probeMu.Lock(); delete(probeCopies, t); probeMu.Unlock() })
	return p
}

var (
	probeMu     sync.Mutex
	probeCopies = map[*testing.T]string{}
)

// probe runs the test binary as u in the given mode.
func probe(t *testing.T, u osUser, mode, arg string, stdin []byte) (stdout, stderr string, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, probeBinary(t))
	cmd.Env = []string{"PGTWIN_E2E_PROBE=" + mode, "PGTWIN_E2E_PROBE_ARG=" + arg, "PATH=/usr/bin:/bin", "HOME=/tmp"}
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if u.Cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Cred}
	}
	err := cmd.Run()
	if ee, isExit := err.(*exec.ExitError); err != nil && (!isExit || ee.ExitCode() != 3) {
		t.Fatalf("probe %s %s as %s did not run: %v: %s", mode, arg, u.Name, err, errb.String())
	}
	return out.String(), errb.String(), err == nil
}

// rawHTTP sends one request over the daemon's socket as u and returns the
// status code (0 when no HTTP answer came) and the whole answer.
func (d *daemon) rawHTTP(t *testing.T, u osUser, method, target, body string, headers ...string) (int, string) {
	t.Helper()
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: pgtwin\r\nConnection: close\r\n", method, target)
	for _, h := range headers {
		req.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&req, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	req.WriteString("\r\n" + body)
	out, errs, ok := probe(t, u, "relay", d.Socket, []byte(req.String()))
	if !ok {
		t.Fatalf("raw HTTP as %s: cannot reach the socket: %s", u.Name, errs)
	}
	line, _, _ := strings.Cut(out, "\r\n")
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/") {
		return 0, out
	}
	code, _ := strconv.Atoi(f[1])
	return code, out
}

// instance is one postmaster of the daemon, found by its unix socket.
type instance struct {
	ID      string // volume id: the socket directory's name
	SockDir string
	Port    int
}

var socketRE = regexp.MustCompile(`^\.s\.PGSQL\.(\d+)$`)

// instances lists the running postmasters under DATA_DIR/run.
func (d *daemon) instances(t *testing.T) []instance {
	t.Helper()
	socks, _ := filepath.Glob(filepath.Join(d.DataDir, "run", "*", ".s.PGSQL.*"))
	var out []instance
	for _, s := range socks {
		m := socketRE.FindStringSubmatch(filepath.Base(s))
		if m == nil {
			continue
		}
		port, _ := strconv.Atoi(m[1])
		out = append(out, instance{ID: filepath.Base(filepath.Dir(s)), SockDir: filepath.Dir(s), Port: port})
	}
	return out
}

// instanceOn is the running instance whose socket carries port.
func (d *daemon) instanceOn(t *testing.T, port int) instance {
	t.Helper()
	for _, i := range d.instances(t) {
		if i.Port == port {
			return i
		}
	}
	t.Fatalf("no running instance with a unix socket for port %d under %s/run", port, d.DataDir)
	return instance{}
}

// rootConn reaches an instance as its bootstrap superuser over the unix
// socket (peer authentication maps root), with neutral settings.
func rootConn(t *testing.T, i instance, db string) *pgx.Conn {
	t.Helper()
	cs := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable options='%s'", i.SockDir, i.Port, bootstrapSuper, db, neutralOptions)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cs)
	if err != nil {
		t.Fatalf("connect to instance %s as %s: %v", i.ID, bootstrapSuper, err)
	}
	// A per-database "role" setting would make this session someone else.
	if _, err := conn.Exec(ctx, "SET ROLE NONE"); err != nil {
		t.Fatalf("instance %s: SET ROLE NONE: %v", i.ID, err)
	}
	return conn
}

// userConn opens a branch URL with neutral settings on top (a branch owner's
// own per-database settings would break the test's own checks).
func userConn(uri string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(uri)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["options"] = neutralOptions
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// tcpLogin tries a password login over TCP; nil means it got in.
func tcpLogin(host string, port int, user, password, db string) error {
	return tcpLoginSSL(host, port, user, password, db, "disable")
}

// tcpLoginSSL is tcpLogin with an sslmode: "prefer" sends an SSLRequest
// first, which the proxy answers before it reads the startup packet.
func tcpLoginSSL(host string, port int, user, password, db, sslmode string) error {
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=%s sslmode=%s connect_timeout=10", host, port, db, sslmode))
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = user, password
	cfg.Fallbacks = nil
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	c.Close(context.Background())
	return nil
}

// rawStartup sends a hand-made startup packet (keys and values in order,
// duplicates allowed) and reports what the server answered first:
// "auth-ok" means it let the client in without a password.
func rawStartup(addr string, kv ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	var body []byte
	body = endian.BigEndian.AppendUint32(body, 196608) // protocol 3.0
	for _, s := range kv {
		body = append(body, s...)
		body = append(body, 0)
	}
	body = append(body, 0)
	pkt := endian.BigEndian.AppendUint32(nil, uint32(len(body)+4))
	if _, err := c.Write(append(pkt, body...)); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	typ, err := r.ReadByte()
	if err != nil {
		return "", err
	}
	var n uint32
	if err := endian.Read(r, endian.BigEndian, &n); err != nil {
		return "", err
	}
	msg := make([]byte, max(int(n)-4, 0))
	if _, err := io.ReadFull(r, msg); err != nil {
		return "", err
	}
	switch {
	case typ == 'R' && len(msg) >= 4 && endian.BigEndian.Uint32(msg) == 0:
		return "auth-ok", nil
	case typ == 'R':
		return fmt.Sprintf("auth-request-%d", endian.BigEndian.Uint32(msg)), nil
	case typ == 'E':
		return "error: " + strings.Join(strings.FieldsFunc(string(msg), func(r rune) bool { return r == 0 }), " "), nil
	}
	return fmt.Sprintf("message %q", typ), nil
}

// trapEvidence reads the WARNINGs the trap function raises into every
// instance's server log (DATA_DIR/log/*.log), so a trap that fired in a
// read-only transaction, or in an instance deleted since, still counts.
type trapEvidence struct {
	t       *testing.T
	logDir  string
	tag     string
	offsets map[string]int64
	re      *regexp.Regexp
	// fired counts "trap | user | super" per operation window.
	fired map[string]int
	// superOps lists every firing as a superuser, with the operation.
	superOps []string
	other    []string       // other marker lines (failed COPY, failed CREATE ROLE)
	byUser   map[string]int // "op|user" -> firings
}

func newTrapEvidence(t *testing.T, d *daemon, tag string) *trapEvidence {
	return &trapEvidence{
		t: t, logDir: filepath.Join(d.DataDir, "log"), tag: tag, offsets: map[string]int64{},
		re:    regexp.MustCompile(`PGTWIN-TRAP-` + tag + ` trap=\[([^\]]*)\] user=\[([^\]]*)\] super=\[([^\]]*)\]`),
		fired: map[string]int{}, byUser: map[string]int{},
	}
}

// count is how many trap lines op's window holds for user.
func (e *trapEvidence) count(op, user string) int { return e.byUser[op+"|"+user] }

// collect attributes every new trap line to op and fails the test for each
// that ran as a superuser.
func (e *trapEvidence) collect(op string) {
	t := e.t
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(e.logDir, "*.log"))
	if len(logs) == 0 {
		t.Errorf("no server logs under %s: the trap evidence cannot be read", e.logDir)
	}
	for _, p := range logs {
		f, err := os.Open(p)
		if err != nil {
			t.Errorf("read server log: %v", err)
			continue
		}
		f.Seek(e.offsets[p], io.SeekStart)
		b, _ := io.ReadAll(f)
		f.Close()
		// Only whole lines; the rest is read next time.
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		} else {
			b = nil
		}
		e.offsets[p] += int64(len(b))
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, "PGTWIN-TRAP-"+e.tag) {
				continue
			}
			m := e.re.FindStringSubmatch(line)
			if m == nil {
				e.other = append(e.other, op+": "+strings.TrimSpace(line))
				continue
			}
			e.byUser[op+"|"+m[2]]++
			e.fired[fmt.Sprintf("%-34s | %-12s | super=%s | during %s", m[1], m[2], m[3], op)]++
			if m[3] == "t" || m[3] == "true" {
				e.superOps = append(e.superOps, fmt.Sprintf("trap %q ran as superuser %q during %s (log %s)", m[1], m[2], op, filepath.Base(p)))
				t.Errorf("HOLE: trap %q ran as superuser %q during %s (server log %s)", m[1], m[2], op, p)
			}
		}
	}
}

func (e *trapEvidence) report() {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range e.fired {
			if !yield(k) {
				return
			}
		}
	})
	var b strings.Builder
	fmt.Fprintf(&b, "trap firings (trap | current_user | rolsuper | operation: count), %d kinds:\n", len(keys))
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %d\n", k, e.fired[k])
	}
	for _, o := range e.other {
		fmt.Fprintf(&b, "  other: %s\n", o)
	}
	e.t.Log(b.String())
}

// roleRow is one role as pg_roles shows it.
type roleRow struct {
	Name                                        string
	Super, CreateRole, Login, Replication, BRLS bool
}

func roles(t *testing.T, conn *pgx.Conn) map[string]roleRow {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT rolname::text, rolsuper, rolcreaterole, rolcanlogin, rolreplication, rolbypassrls
		FROM pg_catalog.pg_roles`)
	if err != nil {
		t.Fatalf("list roles: %v", err)
	}
	out := map[string]roleRow{}
	for rows.Next() {
		var r roleRow
		if err := rows.Scan(&r.Name, &r.Super, &r.CreateRole, &r.Login, &r.Replication, &r.BRLS); err != nil {
			t.Fatal(err)
		}
		out[r.Name] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// predefinedMemberships are the pg_* roles role is a member of, directly
// or not; pg_database_owner is left out (every member of the current
// database's owner is one, by definition).
func predefinedMemberships(t *testing.T, conn *pgx.Conn, role string) []string {
	t.Helper()
	return strs(t, conn, fmt.Sprintf(`SELECT r.rolname::text FROM pg_catalog.pg_roles r
		WHERE r.rolname OPERATOR(pg_catalog.~~) 'pg\_%%' AND r.oid OPERATOR(pg_catalog.<) 16384
		AND r.rolname OPERATOR(pg_catalog.<>) %s AND r.rolname OPERATOR(pg_catalog.<>) 'pg_database_owner'
		AND pg_catalog.pg_has_role(%s, r.oid, 'MEMBER') ORDER BY 1`, quoteLit(role), quoteLit(role)))
}

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// hbaFirstMatch is the method of the first pg_hba.conf line that would take
// a TCP login of user from addr (IPv4), "" when none would.
func hbaFirstMatch(hba, user string, addr net.IP) (string, string) {
	for _, line := range strings.Split(hba, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "host") {
			continue
		}
		users := strings.Split(f[2], ",")
		if !slices.Contains(users, "all") && !slices.Contains(users, user) && !slices.Contains(users, `"`+user+`"`) {
			continue
		}
		a, method := f[3], ""
		match := false
		switch a {
		case "all", "samehost", "samenet":
			match = true
			if len(f) > 4 {
				method = f[4]
			}
		default:
			if _, n, err := net.ParseCIDR(a); err == nil {
				match = n.Contains(addr)
				if len(f) > 4 {
					method = f[4]
				}
			} else if ip := net.ParseIP(a); ip != nil && len(f) > 5 {
				// ADDRESS MASK form.
				mask := net.IPMask(net.ParseIP(f[4]).To4())
				match = addr.Mask(mask).Equal(ip.Mask(mask))
				method = f[5]
			}
		}
		if match {
			return method, strings.TrimSpace(line)
		}
	}
	return "", ""
}
