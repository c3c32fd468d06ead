package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// InstanceSpec is how to run one instance.
type InstanceSpec struct {
	Port int
	// Settings are postgresql.conf parameters given on the command line.
	Settings map[string]string
	// NoTCP makes the postmaster listen on its unix socket only: the daemon
	// owns the TCP port (a proxy that wakes the instance on connect).
	NoTCP bool
	// TCPAddress, when set, is where the postmaster listens on TCP instead
	// of engine.listen_address: the internal address a kernel redirect
	// (Redirect) sends the branch's connections to.
	TCPAddress string
}

// Instance is a running postmaster on a volume.
type Instance struct {
	ID        string
	DataDir   string
	SocketDir string
	Port      int
	PID       int
	Superuser string
	major     int // PostgreSQL major version, for settings newer servers added
}

// ConnString is a libpq keyword/value string reaching the instance over its
// unix socket. As root or run_as, user = Superuser needs no password.
//
// Every session it opens runs with pinnedOptions: a branch owner owns her
// database and may attach settings to it (ALTER DATABASE ... SET
// search_path = public, pg_catalog), and the daemon's superuser sessions
// must not run in an environment she chose.
func (i *Instance) ConnString(user, db string) string {
	opts := pinnedOptions
	if i.major >= 14 {
		opts += " -c idle_session_timeout=0"
	}
	if i.major >= 17 {
		opts += " -c transaction_timeout=0"
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable options=%s",
		quoteKV(i.SocketDir), i.Port, quoteKV(user), quoteKV(db), quoteKV(opts))
}

// pinnedOptions are startup options, which outrank ALTER DATABASE and ALTER
// ROLE settings. Only pg_catalog is searched for names (pg_temp last, so it
// never shadows anything); "role" would otherwise let the database's owner
// turn the daemon's session into hers, and local_preload_libraries make every
// connection fail; literals are standard; notices (role setup reports with
// them) are not silenced; and the settings that could make a daemon session
// fail or stall are neutral.
const pinnedOptions = "-c search_path=pg_catalog,pg_temp -c role=none -c local_preload_libraries=" +
	" -c standard_conforming_strings=on -c client_min_messages=notice -c default_transaction_read_only=off" +
	" -c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0"

func quoteKV(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, `'`, `\'`) + "'"
}

// child is a postmaster this process started; waiting on it reaps it.
type child struct {
	pid  int
	done chan struct{}
}

// managed settings are set by the engine and may not be overridden.
var managed = map[string]bool{"port": true, "listen_addresses": true, "unix_socket_directories": true,
	"data_directory": true, "hba_file": true, "ident_file": true, "config_file": true, "external_pid_file": true}

// Start runs volume id's postmaster as run_as, detached so it survives the
// daemon, and returns once it accepts connections. A postmaster already
// running on the volume is adopted as it is.
func (e *Engine) Start(ctx context.Context, id string, spec InstanceSpec) (*Instance, error) {
	if err := e.checkID(id); err != nil {
		return nil, err
	}
	defer e.lock(id)()
	pgdata := e.DataPath(id)
	if !exists(filepath.Join(pgdata, "PG_VERSION")) {
		return nil, fmt.Errorf("start %s: %w", id, ErrNotFound)
	}
	if inst, st, ok := e.instance(id); ok && st == "stopping" {
		// Shutting down: let it finish, then start afresh.
		if err := e.signalAndWait(ctx, id, inst.PID, 0, e.opts.StopTimeout); err != nil {
			return nil, fmt.Errorf("start %s: still shutting down: %w", id, err)
		}
	}
	if inst, _, ok := e.instance(id); ok && (spec.NoTCP && e.listensTCP(id) || spec.TCPAddress != "" && e.listenAddr(id) != spec.TCPAddress) {
		// Started by an older daemon on the TCP port the proxy needs now,
		// or without the listener a redirect needs.
		e.log.Info().Str(logkey.Volume, id).Int(logkey.PID, inst.PID).Msg("restarting instance to listen on its unix socket only")
		if err := e.stop(ctx, id); err != nil {
			return nil, fmt.Errorf("start %s: %w", id, err)
		}
	}
	if inst, st, ok := e.instance(id); ok {
		if st != "ready" && st != "standby" {
			if err := e.waitReady(ctx, id, inst.PID, nil, 0); err != nil {
				return nil, fmt.Errorf("start %s: %w", id, err)
			}
		}
		e.log.Info().Str(logkey.Volume, id).Int(logkey.PID, inst.PID).Int(logkey.Port, inst.Port).Msg("adopted running instance")
		return inst, nil
	}
	e.killStrays(ctx, id)
	listen := e.opts.Config.ListenAddress
	if spec.NoTCP {
		listen = ""
	}
	if spec.TCPAddress != "" {
		listen = spec.TCPAddress
	}
	inst, err := e.launch(ctx, id, spec, listen)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	e.log.Info().Str(logkey.Volume, id).Int(logkey.PID, inst.PID).Int(logkey.Port, inst.Port).Msg("instance started")
	return inst, nil
}

// launch starts a postmaster on volume id, which must not be running, and
// waits until it accepts connections. listen "" means unix socket only.
func (e *Engine) launch(ctx context.Context, id string, spec InstanceSpec, listen string) (*Instance, error) {
	pgdata := e.DataPath(id)
	if spec.Port <= 0 || spec.Port > 65535 {
		return nil, fmt.Errorf("invalid port %d", spec.Port)
	}
	sock := e.socketDir(id)
	if n := len(sock) + len("/.s.PGSQL.65535.lock"); n > 107 {
		return nil, fmt.Errorf("socket path %s is %d bytes, over the 107 allowed; use a shorter daemon.data_dir", sock, n)
	}
	args := []string{"-D", pgdata}
	keys := make([]string, 0, len(spec.Settings))
	for k := range spec.Settings {
		if managed[k] || k == "" || strings.ContainsAny(k, "= \n") {
			return nil, fmt.Errorf("setting %q is managed by pgtwin or invalid", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+spec.Settings[k])
	}
	// A read-only instance is a hot standby; branches.settings must not be
	// able to turn that into one that refuses every connection.
	args = append(args, "-c", "hot_standby=on", "-c", "port="+strconv.Itoa(spec.Port),
		"-c", "listen_addresses="+listen,
		"-c", "unix_socket_directories="+sock)

	// pg_hba.conf is written at every start, so a volume made by an older
	// daemon (or cloned from one) gets today's rules.
	if err := e.writeAuth(id, e.readMeta(id).Superuser); err != nil {
		return nil, err
	}
	if err := e.ownPGData(pgdata); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(sock, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(sock, 0o700); err != nil {
		return nil, err
	}
	if err := e.user.chown(sock); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(e.logDir, 0o750); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(e.LogPath(id), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	logStart, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(e.bin.path("postgres"), args...)
	cmd.Dir = pgdata
	cmd.Env = e.childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = e.user.sysProcAttr(true)
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return nil, err
	}
	c := &child{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	e.mu.Lock()
	e.procs[id] = c
	e.mu.Unlock()

	if err := e.waitReady(ctx, id, c.pid, c.done, logStart); err != nil {
		// Leave nothing half-started behind.
		_ = e.signalAndWait(context.Background(), id, c.pid, syscall.SIGQUIT, 10*time.Second)
		_ = e.signalAndWait(context.Background(), id, c.pid, syscall.SIGKILL, 5*time.Second)
		return nil, err
	}
	inst, _, ok := e.instance(id)
	if !ok {
		return nil, fmt.Errorf("postmaster exited right after start: %s", e.logTail(id, logStart))
	}
	return inst, nil
}

// waitReady polls postmaster.pid until the postmaster reports it accepts
// connections (after any recovery), it exits, or time runs out.
func (e *Engine) waitReady(ctx context.Context, id string, pid int, done <-chan struct{}, logStart int64) error {
	deadline := time.NewTimer(e.opts.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if pf, err := readPidFile(e.DataPath(id)); err == nil && pf.pid == pid && (pf.status == "ready" || pf.status == "standby") {
			return nil
		}
		if done == nil && !alive(pid) {
			return fmt.Errorf("postmaster %d exited: %s", pid, e.logTail(id, logStart))
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited: %s", e.logTail(id, logStart))
		case <-deadline.C:
			return fmt.Errorf("%w (%s): %s", ErrStartTimeout, e.opts.StartTimeout, e.logTail(id, logStart))
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Stop shuts volume id's instance down: fast (SIGINT), then immediate
// (SIGQUIT) after StopTimeout. Not running is not an error.
func (e *Engine) Stop(ctx context.Context, id string) error {
	if err := e.checkID(id); err != nil {
		return err
	}
	defer e.lock(id)()
	if err := e.stop(ctx, id); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return nil
}

func (e *Engine) stop(ctx context.Context, id string) error {
	inst, _, ok := e.instance(id)
	if !ok {
		e.killStrays(ctx, id)
		return nil
	}
	if e.signalAndWait(ctx, id, inst.PID, syscall.SIGINT, e.opts.StopTimeout) == nil {
		e.log.Info().Str(logkey.Volume, id).Int(logkey.PID, inst.PID).Msg("instance stopped")
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.log.Warn().Str(logkey.Volume, id).Int(logkey.PID, inst.PID).Msg("fast shutdown timed out; immediate shutdown")
	if e.signalAndWait(ctx, id, inst.PID, syscall.SIGQUIT, 10*time.Second) == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.signalAndWait(ctx, id, inst.PID, syscall.SIGKILL, 5*time.Second)
}

var errStillRunning = errors.New("postmaster still running")

func (e *Engine) signalAndWait(ctx context.Context, id string, pid int, sig syscall.Signal, wait time.Duration) error {
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
	e.mu.Lock()
	c := e.procs[id]
	e.mu.Unlock()
	var done <-chan struct{}
	if c != nil && c.pid == pid {
		done = c.done
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if done == nil && !e.isPostmaster(pid, e.DataPath(id)) {
			return nil
		}
		select {
		case <-done:
			e.mu.Lock()
			if e.procs[id] == c {
				delete(e.procs, id)
			}
			e.mu.Unlock()
			return nil
		case <-t.C:
			return errStillRunning
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Instance is volume id's running instance, read from postmaster.pid and the
// process table, so it also finds instances a previous daemon started.
func (e *Engine) Instance(id string) (*Instance, bool) {
	if e.checkID(id) != nil {
		return nil, false
	}
	inst, _, ok := e.instance(id)
	return inst, ok
}

func (e *Engine) instance(id string) (*Instance, string, bool) {
	pgdata := e.DataPath(id)
	pf, err := readPidFile(pgdata)
	if err != nil || !e.isPostmaster(pf.pid, pgdata) {
		return nil, "", false
	}
	return &Instance{
		ID:        id,
		DataDir:   pgdata,
		SocketDir: pf.socketDir,
		Port:      pf.port,
		PID:       pf.pid,
		Superuser: e.readMeta(id).Superuser,
		major:     e.major(),
	}, pf.status, true
}

// isPostmaster tells whether pid is a live process working in pgdata: the
// postmaster chdirs to its data directory, which guards against a recycled
// pid or a pid file copied from another volume.
func (e *Engine) isPostmaster(pid int, pgdata string) bool {
	if pid <= 0 {
		return false
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	want, err := filepath.EvalSymlinks(pgdata)
	if err != nil {
		return false
	}
	return cwd == want
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

type pidFile struct {
	pid       int
	port      int
	socketDir string
	listen    string
	status    string
}

// listensTCP says whether volume id's postmaster listens on a TCP address.
func (e *Engine) listensTCP(id string) bool { return e.listenAddr(id) != "" }

// listenAddr is the TCP address a running postmaster listens on ("": none).
func (e *Engine) listenAddr(id string) string {
	pf, err := readPidFile(e.DataPath(id))
	if err != nil {
		return ""
	}
	return pf.listen
}

// readPidFile parses postmaster.pid: pid, data dir, start time, port, socket
// dir, listen address, shared memory key, status.
func readPidFile(pgdata string) (pidFile, error) {
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return pidFile{}, err
	}
	lines := strings.Split(string(b), "\n")
	var pf pidFile
	pf.pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil {
		return pidFile{}, fmt.Errorf("postmaster.pid: bad pid %q", lines[0])
	}
	if len(lines) > 3 {
		pf.port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	if len(lines) > 4 {
		pf.socketDir = strings.TrimSpace(lines[4])
	}
	if len(lines) > 5 {
		pf.listen = strings.TrimSpace(lines[5])
	}
	if len(lines) > 7 {
		pf.status = strings.TrimSpace(lines[7])
	}
	return pf, nil
}

// logTail is the end of what the instance logged since offset from.
func (e *Engine) logTail(id string, from int64) string {
	f, err := os.Open(e.LogPath(id))
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-from > 64<<10 {
		from = fi.Size() - 64<<10
	}
	_, _ = f.Seek(from, io.SeekStart)
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 15 {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return "(log empty; see " + e.LogPath(id) + ")"
	}
	return strings.Join(lines, "\n")
}
