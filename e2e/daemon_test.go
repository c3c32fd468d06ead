package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/engine/enginetest"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// Groups the tests create: members of socketGroup may connect to the
// daemon's socket, members of adminGroup see and change every branch.
const (
	socketGroup = "pgtwine2e"
	adminGroup  = "pgtwine2eadm"
)

type daemonOpts struct {
	// Driver is "btrfs" (a loop-mounted btrfs image), "reflink" (a loop
	// XFS image) or "copy" (the ordinary temp disk).
	Driver string
	// ImageSize of the loop image; default 3 GiB (sparse).
	ImageSize int64
	// Extra TOML appended to the config, e.g. a [sync] section.
	Extra string
	// Branches are extra lines of the [branches] section, e.g.
	// `max_running = 20`; idle_suspend is "0" unless they set it.
	Branches string
	// Settings override [branches.settings] entries (values are TOML
	// strings).
	Settings map[string]string
	// Ports is the size of the daemon's port range; default 100.
	Ports int
	// Metrics sets daemon.metrics_address to a free port on 127.0.0.1.
	Metrics bool
}

// daemon is one `pgtwin serve` the test started, with its own data dir,
// socket and port range.
type daemon struct {
	t       *testing.T
	dir     string // 0755, holds socket, config, log
	DataDir string
	Socket  string
	Config  string
	LogPath string
	PortLo  int
	PortHi  int
	// MetricsAddr is daemon.metrics_address, if daemonOpts.Metrics.
	MetricsAddr string

	cmd    *exec.Cmd
	exited chan struct{}
}

// startDaemon writes a config and starts the daemon; it returns once the
// socket answers. Everything is stopped and removed when the test ends.
func startDaemon(t *testing.T, o daemonOpts) *daemon {
	t.Helper()
	ensureGroup(t, socketGroup)
	ensureGroup(t, adminGroup)
	if o.ImageSize == 0 {
		o.ImageSize = 3 << 30
	}
	dir, err := os.MkdirTemp("", "pgtwin-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })

	var dataDir string
	switch o.Driver {
	case "btrfs":
		dataDir = filepath.Join(reachable(t, enginetest.LoopFS(t, "btrfs", o.ImageSize)), "pgtwin")
	case "reflink":
		dataDir = filepath.Join(reachable(t, enginetest.LoopFS(t, "xfs", o.ImageSize)), "pgtwin")
	case "copy":
		dataDir = filepath.Join(dir, "data")
	default:
		t.Fatalf("startDaemon: unknown driver %q", o.Driver)
	}
	// Below the kernel's ephemeral range (32768-60999), where other tests'
	// clusters and client sockets take their ports.
	if o.Ports <= 0 {
		o.Ports = 100
	}
	lo := 20000 + rand.IntN(120-(o.Ports-1)/100)*100
	d := &daemon{
		t: t, dir: dir, DataDir: dataDir,
		Socket:  filepath.Join(dir, "pgtwin.sock"),
		Config:  filepath.Join(dir, "pgtwin.toml"),
		LogPath: filepath.Join(dir, "daemon.log"),
		PortLo:  lo, PortHi: lo + o.Ports - 1,
	}
	settings := map[string]string{"shared_buffers": "16MB", "max_connections": "20", "fsync": "off"}
	for k, v := range o.Settings {
		settings[k] = v
	}
	var settingLines strings.Builder
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&settingLines, "%s = %q\n", k, settings[k])
	}
	metrics := ""
	if o.Metrics {
		d.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", pgtest.FreePort(t))
		metrics = fmt.Sprintf("metrics_address = %q\n", d.MetricsAddr)
	}
	branches := o.Branches
	if !strings.Contains(branches, "idle_suspend") {
		branches = "idle_suspend = \"0\"\n" + branches
	}
	cfg := fmt.Sprintf(`# written by the e2e tests
[daemon]
socket = %q
data_dir = %q
admin_group = %q
socket_group = %q
log_level = "debug"
%s
[engine]
driver = %q
port_range = "%d-%d"

[branches]
%s
[branches.settings]
%s`, d.Socket, d.DataDir, adminGroup, socketGroup, metrics, o.Driver, d.PortLo, d.PortHi, branches, settingLines.String())
	if err := os.WriteFile(d.Config, []byte(cfg+o.Extra), 0o644); err != nil {
		t.Fatal(err)
	}
	// Registered before the start so a daemon that fails half way is still
	// cleaned up; it runs before the loop image is unmounted (LIFO).
	t.Cleanup(d.cleanup)
	d.start()
	return d
}

// reachable opens the directories above a t.TempDir mount (0700) so the
// postgres user can reach its data directories below.
func reachable(t *testing.T, mnt string) string {
	t.Helper()
	for p := mnt; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatalf("chmod %s: %v", p, err)
		}
	}
	return mnt
}

// start runs `pgtwin serve` and waits until the socket answers.
func (d *daemon) start() {
	t := d.t
	t.Helper()
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "\n----- e2e: pgtwin serve at %s -----\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(binary, "serve", "--config", d.Config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start daemon: %v", err)
	}
	logf.Close()
	d.cmd = cmd
	d.exited = make(chan struct{})
	go func() { cmd.Wait(); close(d.exited) }()

	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-d.exited:
			t.Fatalf("daemon exited at start (%v); log:\n%s", cmd.ProcessState, d.logTail(60))
		default:
		}
		if r := d.cli(root, "status"); r.code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not answering on %s after 2 minutes; log:\n%s", d.Socket, d.logTail(60))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill9 kills the daemon without warning; its postgres instances live on.
func (d *daemon) kill9() {
	if d.cmd == nil {
		return
	}
	syscall.Kill(d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.exited
	d.cmd = nil
}

// stop asks the daemon to stop and waits.
func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.t.Errorf("daemon did not stop within 30s of SIGTERM; killing it")
		d.kill9()
	}
	d.cmd = nil
}

func (d *daemon) restart() {
	d.t.Helper()
	d.kill9()
	d.start()
}

// cleanup stops the daemon and every postgres it left under the data dir,
// so the loop image can be unmounted.
func (d *daemon) cleanup() {
	d.stop()
	pms := postmasters(d.DataDir)
	for _, p := range pms {
		syscall.Kill(p.pid, syscall.SIGQUIT)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range pms {
		for alive(p.pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(p.pid) {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	if d.t.Failed() {
		d.t.Logf("daemon log (%s), last lines:\n%s", d.LogPath, d.logTail(80))
	}
}

func alive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

func (d *daemon) logTail(n int) string {
	b, _ := os.ReadFile(d.LogPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// result is one CLI run.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("pgtwin %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cli runs the binary as user u against this daemon's socket.
func (d *daemon) cli(u osUser, args ...string) result {
	return runCLI(u, append([]string{"--socket", d.Socket}, args...)...)
}

// must runs the CLI and fails the test unless it exits 0.
func (d *daemon) must(u osUser, args ...string) result {
	d.t.Helper()
	r := d.cli(u, args...)
	if r.code != 0 {
		d.t.Fatalf("as %s: %s", u.Name, r)
	}
	return r
}

func runCLI(u osUser, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C"}
	if u.Cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Cred}
	}
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	if err != nil {
		r.code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
	}
	return r
}

// metrics scrapes daemon.metrics_address.
func (d *daemon) metrics(t *testing.T) string {
	t.Helper()
	if d.MetricsAddr == "" {
		t.Fatal("metrics: the daemon was started without daemonOpts.Metrics")
	}
	resp, err := http.Get("http://" + d.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics on daemon.metrics_address: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: status %d, %v", resp.StatusCode, err)
	}
	return string(body)
}
