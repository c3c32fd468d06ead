package proxy_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/proxy"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// benchPath is one way for pgbench to reach the instance.
type benchPath struct {
	name       string
	host, port string
	cpu        func() time.Duration // the proxy's CPU time so far; nil for direct paths
	setup      func()               // before each run
}

// benchLoad is one pgbench workload.
type benchLoad struct {
	name string
	args []string
}

// TestBenchProxyThroughput runs pgbench -S and -N at -c1 and -c4 through the
// proxy, through haproxy (mode tcp, in front of the same unix socket),
// through the kernel redirect (engine.Redirect, as a running branch's URL),
// and straight on the unix socket and TCP port, in interleaved rounds, and
// reports tps and each proxy's CPU time per transaction. It runs in a
// network namespace of its own, for the redirect.
func TestBenchProxyThroughput(t *testing.T) {
	benchGate(t)
	haproxyBin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy not found: apt-get install -y haproxy (the benchmark compares with it)")
	}
	if !inNetNS(t) {
		return
	}
	b := newBackend(t)
	// The postmaster listens on the redirect's internal address, as a
	// running branch does; 127.0.0.1 is the branch URL's address.
	b.listen = "127.0.0.2"
	if _, err := b.Wake(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, b, proxy.Options{})
	hport, hpid := startHAProxy(t, haproxyBin, b.socket())
	r, err := engine.NewRedirect("127.0.0.1")
	if err != nil {
		t.Fatalf("nftables in the benchmark's network namespace: %v", err)
	}
	defer r.Close()
	if err := r.On(b.c.Port); err != nil {
		t.Fatal(err)
	}
	secs := strconv.Itoa(envInt("PGTWIN_BENCH_SECONDS", 10))
	rounds := envInt("PGTWIN_BENCH_ROUNDS", 3)
	port := strconv.Itoa(b.c.Port)

	out, err := exec.Command(filepath.Join(pgtest.BinDir(), "pgbench"), "-i", "-q", "-s", "10",
		"-h", b.c.Dir, "-p", port, "-U", appRole, appRole).CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	self := func() time.Duration { return procCPU(t, os.Getpid()) }
	// Go's default, and the daemon's (proxy.SpareP, one more), which the
	// pgtwin proxy path runs with.
	goProcs := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(goProcs)
	procs := proxy.SpareP()
	paths := []benchPath{
		{name: "unix socket", host: b.c.Dir, port: port},
		{name: "tcp direct", host: "127.0.0.2", port: port},
		{name: "kernel redirect", host: "127.0.0.1", port: port},
		{name: "pgtwin proxy", host: "127.0.0.1", port: proxyPort(p), cpu: self, setup: func() { proxy.SetCopyMode(proxy.CopyRelay); proxy.SetLoops(0) }},
		{name: "haproxy", host: "127.0.0.1", port: hport, cpu: func() time.Duration { return procCPU(t, hpid) }},
	}
	if os.Getenv("PGTWIN_BENCH_LOOPS") == "1" {
		// The relay's shape before loops were shared: a thread and an
		// epoll set per session.
		paths = append(paths, benchPath{name: "loop/session", host: "127.0.0.1", port: proxyPort(p), cpu: self,
			setup: func() { proxy.SetCopyMode(proxy.CopyRelay); proxy.SetLoops(1 << 20) }},
			benchPath{name: "one loop", host: "127.0.0.1", port: proxyPort(p), cpu: self,
				setup: func() { proxy.SetCopyMode(proxy.CopyRelay); proxy.SetLoops(1) }})
	}
	if os.Getenv("PGTWIN_BENCH_PROCS") == "1" {
		// The default leaves a P idle (one loop fewer than GOMAXPROCS)
		// and yields every 5 ms, so that Go's sysmon does not retake
		// a waiting loop's P. Against it: the relay before (as many loops as
		// Ps, no yield); and the idle P without the yield.
		paths = append(paths, benchPath{name: "before", host: "127.0.0.1", port: proxyPort(p), cpu: self,
			setup: func() { proxy.SetCopyMode(proxy.CopyRelay); proxy.SetLoops(procs); proxy.SetYield(false) }},
			benchPath{name: "no yield", host: "127.0.0.1", port: proxyPort(p), cpu: self,
				setup: func() { proxy.SetCopyMode(proxy.CopyRelay); proxy.SetLoops(0); proxy.SetYield(false) }})
	}
	if os.Getenv("PGTWIN_BENCH_PROCS") == "2" {
		// Without the daemon's spare P: Go's default GOMAXPROCS, and so
		// one loop fewer (one on two CPUs).
		paths = append(paths, benchPath{name: "no spare P", host: "127.0.0.1", port: proxyPort(p), cpu: self,
			setup: func() {
				proxy.SetCopyMode(proxy.CopyRelay)
				proxy.SetLoops(0)
				runtime.GOMAXPROCS(goProcs)
			}})
	}
	if os.Getenv("PGTWIN_BENCH_IOCOPY") == "1" {
		paths = append(paths, benchPath{name: "pgtwin io.Copy", host: "127.0.0.1", port: proxyPort(p), cpu: self,
			setup: func() { proxy.SetCopyMode(proxy.CopyIO) }})
	}
	defer proxy.SetCopyMode(proxy.CopyRelay)
	defer proxy.SetLoops(0)
	defer proxy.SetYield(true)
	loads := []benchLoad{
		{"-S -c1", []string{"-S", "-c", "1"}},
		{"-S -c4 -j2", []string{"-S", "-c", "4", "-j", "2"}},
		{"-N -c1", []string{"-N", "-c", "1"}},
		{"-N -c4 -j2", []string{"-N", "-c", "4", "-j", "2"}},
	}
	if only := os.Getenv("PGTWIN_BENCH_LOADS"); only != "" {
		// e.g. "c4": only the loads whose name holds it.
		loads = slices.DeleteFunc(loads, func(l benchLoad) bool { return !strings.Contains(l.name, only) })
	}
	type key struct{ load, path int }
	tps := map[key][]float64{}
	cpu := map[key][]float64{}
	load0 := loadAvg()
	// PGTWIN_BENCH_PATHS, e.g. "pgtwin proxy,haproxy": only the paths
	// named, for more rounds in the same time.
	var only []string
	if v := os.Getenv("PGTWIN_BENCH_PATHS"); v != "" {
		only = strings.Split(v, ",")
	}
	for round := range rounds {
		for li, l := range loads {
			for i := range paths {
				// Every other round runs the paths in reverse, so that no
				// path always follows the same one.
				pi := i
				if round%2 == 1 {
					pi = len(paths) - 1 - i
				}
				bp := paths[pi]
				if only != nil && !slices.Contains(only, bp.name) {
					continue
				}
				// The previous variant's loops end with its sessions; a
				// variant must not inherit them.
				for deadline := time.Now().Add(5 * time.Second); proxy.Loops() > 0 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				runtime.GOMAXPROCS(procs)
				proxy.SetYield(true)
				// Progress, for a profiler to attach to one variant.
				fmt.Fprintf(os.Stderr, "%s bench: %s via %s\n", time.Now().Format("15:04:05"), l.name, bp.name)
				if bp.setup != nil {
					bp.setup()
				}
				var before time.Duration
				if bp.cpu != nil {
					before = bp.cpu()
				}
				args := append(append([]string{}, l.args...), "-T", secs, "-n", "-h", bp.host, "-p", bp.port, "-U", appRole, appRole)
				k := key{li, pi}
				tps[k] = append(tps[k], pgbench(t, args...))
				if bp.cpu != nil {
					cpu[k] = append(cpu[k], float64((bp.cpu()-before).Microseconds())/float64(lastTx))
				}
			}
		}
	}
	fmt.Printf("pgbench -T %s, scale 10, %d interleaved round(s), GOMAXPROCS %d (Go's default %d); load average (1 min) %s at the start, %s at the end; tps median [rounds]; proxy CPU µs/transaction median [rounds]\n",
		secs, rounds, procs, goProcs, load0, loadAvg())
	for li, l := range loads {
		fmt.Printf("%s\n", l.name)
		unix := 0.0 // NaN ratios when the unix socket was not run
		if len(tps[key{li, 0}]) > 0 {
			unix = median(tps[key{li, 0}])
		}
		for pi, bp := range paths {
			k := key{li, pi}
			if len(tps[k]) == 0 {
				continue
			}
			line := fmt.Sprintf("  %-15s %8.0f tps  %.3f of unix  %s", bp.name, median(tps[k]), median(tps[k])/unix, fmts(tps[k], "%.0f"))
			if bp.cpu != nil {
				line += fmt.Sprintf("  cpu %.1f µs/tx %s", median(cpu[k]), fmts(cpu[k], "%.1f"))
			}
			fmt.Println(line)
		}
		for pi, bp := range paths {
			if bp.cpu == nil || pi == 4 || len(tps[key{li, pi}]) == 0 || len(tps[key{li, 4}]) == 0 {
				continue // not a proxy, haproxy itself, or not run
			}
			var ratios []float64
			for r := range rounds {
				ratios = append(ratios, tps[key{li, pi}][r]/tps[key{li, 4}][r])
			}
			fmt.Printf("  %s / haproxy, median of per-round ratios: %.3f %s\n", bp.name, median(ratios), fmts(ratios, "%.3f"))
		}
		if len(tps[key{li, 1}]) == 0 || len(tps[key{li, 2}]) == 0 {
			continue
		}
		var kr []float64
		for r := range rounds {
			kr = append(kr, tps[key{li, 2}][r]/tps[key{li, 1}][r])
		}
		fmt.Printf("  kernel redirect / tcp direct, median of per-round ratios: %.3f %s\n", median(kr), fmts(kr, "%.3f"))
	}
}

func fmts(xs []float64, f string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(f, x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// startHAProxy runs haproxy in the foreground, relaying a free loopback
// port to socket, and returns the port and haproxy's pid.
func startHAProxy(t *testing.T, bin, socket string) (string, int) {
	t.Helper()
	port := strconv.Itoa(pgtest.FreePort(t))
	cfg := fmt.Sprintf(`global
	maxconn 1000
defaults
	mode tcp
	timeout connect 5s
	timeout client 1h
	timeout server 1h
listen pg
	bind 127.0.0.1:%s
	server pg unix@%s
`, port, socket)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command(filepath.Join(pgtest.BinDir(), "pg_isready"), "-h", "127.0.0.1", "-p", port).CombinedOutput()
		if strings.Contains(string(out), "accepting") {
			return port, cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not answer on %s: %s", port, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// procCPU is utime+stime of a process from /proc/PID/stat.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the line, in clock ticks (100 per second).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// inNetNS reruns the calling test alone in a fresh network namespace (so it
// never touches the host's nftables ruleset) and reports whether this is the
// run inside it; the outer run prints the inner one's output and fails if it
// does.
func inNetNS(t *testing.T) bool {
	t.Helper()
	if os.Getenv("PGTWIN_NETNS") == t.Name() {
		return true
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare not found: install util-linux (the test runs in its own network namespace)")
	}
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", `ip link set lo up && exec "$@"`, "sh",
		os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v", "-test.timeout=2h")
	cmd.Env = append(os.Environ(), "PGTWIN_NETNS="+t.Name())
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run in a network namespace: %v", err)
	}
	return false
}
