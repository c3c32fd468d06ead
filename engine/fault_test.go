package engine_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
)

// The kill -9 tests re-run this test binary as a child (TestMain sees
// faultChildEnv) that makes a clone or snapshot and SIGKILLs itself at step N.
const faultChildEnv = "PGTWIN_FAULT_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(faultChildEnv) != "" {
		os.Exit(faultChild())
	}
	os.Exit(m.Run())
}

// faultChild exits 0 if the operation finished without reaching the step,
// 1 on an error; at the step it dies by SIGKILL.
func faultChild() int {
	env := func(k string) string { return os.Getenv("PGTWIN_FAULT_" + k) }
	killAt, _ := strconv.Atoi(env("STEP"))
	n := 0
	hook := func(step string) {
		n++
		if n == killAt {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	ctx := context.Background()
	e, err := openEngine(ctx, env("DRIVER"), env("ROOT"), env("DATADIR"), hook, zerolog.Nop())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch env("OP") {
	case "clone":
		err = e.Clone(ctx, env("SRC"), env("ID"))
	case "snapshot":
		err = e.Snapshot(ctx, env("SRC"), env("ID"))
	case "init":
		err = e.InitVolume(ctx, env("ID"), engine.InitOptions{})
	case "start":
		// A daemon that starts an instance and then dies by kill -9.
		port, _ := strconv.Atoi(env("PORT"))
		if _, err = e.Start(ctx, env("ID"), engine.InstanceSpec{Port: port}); err == nil {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	default:
		err = fmt.Errorf("unknown op %q", env("OP"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestKillBetweenSteps kills the engine at every step of making a clone (of
// a stopped snapshot, and of a running volume), of snapshotting a running
// volume and of initializing one; a new engine's Recover must report and remove the half-made
// volume, or, killed after the last step, find it complete and startable.
func TestKillBetweenSteps(t *testing.T) {
	trials := 1
	if s := os.Getenv("PGTWIN_FAULT_TRIALS"); s != "" {
		trials, _ = strconv.Atoi(s)
	}
	for _, drv := range allDrivers {
		t.Run(drv, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, drv, driverBase(t, drv, 1<<30))
			f.init("origin")
			if err := f.e.Snapshot(ctx, "origin", "snap"); err != nil {
				t.Fatal(err)
			}
			origin := f.start("origin")
			c := connect(t, origin)
			exec1(t, c, "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")

			cases := []struct{ op, src string }{{"clone", "snap"}, {"clone", "origin"}, {"snapshot", "origin"}, {"init", ""}}
			for _, tc := range cases {
				// Keep the suite short: on copy every step is a full copy, and
				// its live clone takes the same bracketed path as its snapshot.
				if drv == "copy" && tc.op == "clone" && tc.src == "origin" || drv == "reflink" && tc.op == "init" {
					continue
				}
				name := tc.op
				if tc.src != "" {
					name += "-of-" + tc.src
				}
				t.Run(name, func(t *testing.T) {
					steps := recordSteps(t, f, tc.op, tc.src)
					t.Logf("steps: %v", steps)
					for trial := 0; trial < trials; trial++ {
						for i := range steps {
							id := fmt.Sprintf("k%d-%d", trial, i)
							killAt(t, f, tc.op, tc.src, id, i+1)
							e := f.open(nil)
							ids, err := e.Recover(ctx)
							if err != nil {
								t.Fatalf("kill after %s: recover: %v", steps[i], err)
							}
							if i == len(steps)-1 {
								if len(ids) != 0 {
									t.Fatalf("kill after the last step: recover removed %v", ids)
								}
								verify(t, f, tc.op, id)
								continue
							}
							if len(ids) != 1 || ids[0] != id {
								t.Fatalf("kill after %s: recover reported %v, want [%s]", steps[i], ids, id)
							}
							mustNotExist(t, f, id)
						}
					}
				})
			}
			// The origin kept running through every kill and aborted backup.
			if n := queryInt(t, c, "SELECT count(*) FROM t"); n != 1000 {
				t.Fatalf("origin has %d rows", n)
			}
		})
	}
}

// recordSteps makes one volume normally and returns the steps it passed.
func recordSteps(t *testing.T, f *fixture, op, src string) []string {
	var steps []string
	e := f.open(func(s string) { steps = append(steps, s) })
	var err error
	switch op {
	case "clone":
		err = e.Clone(context.Background(), src, "rec")
	case "snapshot":
		err = e.Snapshot(context.Background(), src, "rec")
	case "init":
		err = e.InitVolume(context.Background(), "rec", engine.InitOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	verify(t, f, op, "rec")
	if len(steps) < 2 {
		t.Fatalf("only steps %v", steps)
	}
	return steps
}

func killAt(t *testing.T, f *fixture, op, src, id string, step int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), faultChildEnv+"=1",
		"PGTWIN_FAULT_DRIVER="+f.drv, "PGTWIN_FAULT_ROOT="+f.root, "PGTWIN_FAULT_DATADIR="+f.dataDir,
		"PGTWIN_FAULT_OP="+op, "PGTWIN_FAULT_SRC="+src, "PGTWIN_FAULT_ID="+id,
		"PGTWIN_FAULT_STEP="+strconv.Itoa(step))
	out, err := cmd.CombinedOutput()
	if !killedBySIGKILL(err) {
		t.Fatalf("child making %s %s at step %d: want death by SIGKILL, got %v: %s", op, id, step, err, out)
	}
}

// verify checks a finished volume: a clone starts and holds the data; a
// snapshot can be cloned, and that clone starts. Both are removed after.
func verify(t *testing.T, f *fixture, op, id string) {
	t.Helper()
	ctx := context.Background()
	cl := id
	if op == "snapshot" {
		cl = id + "-c"
		if err := f.e.Clone(ctx, id, cl); err != nil {
			t.Fatalf("clone of finished snapshot %s: %v", id, err)
		}
	}
	inst := f.start(cl)
	c := connect(t, inst)
	if n := queryInt(t, c, "SELECT count(*) FROM pg_class"); n == 0 {
		t.Fatalf("%s: empty catalog", cl)
	}
	c.Close(ctx)
	vols := []string{id}
	if cl != id {
		vols = []string{cl, id}
	}
	for _, v := range vols {
		if err := f.e.Destroy(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	delete(f.ports, inst.Port)
}

// TestAdoptAfterDaemonKill: an instance started by a daemon that then dies
// by kill -9 keeps serving, and a new engine adopts and stops it.
func TestAdoptAfterDaemonKill(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "btrfs", driverBase(t, "btrfs", 512<<20))
	f.init("main")
	port, err := f.e.AllocatePort(nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), faultChildEnv+"=1", "PGTWIN_FAULT_DRIVER=btrfs", "PGTWIN_FAULT_ROOT="+f.root,
		"PGTWIN_FAULT_DATADIR="+f.dataDir, "PGTWIN_FAULT_OP=start", "PGTWIN_FAULT_ID=main", "PGTWIN_FAULT_PORT="+strconv.Itoa(port))
	if out, err := cmd.CombinedOutput(); !killedBySIGKILL(err) {
		t.Fatalf("daemon child: want death by SIGKILL after start, got %v: %s", err, out)
	}
	e := f.open(nil)
	inst, ok := e.Instance("main")
	if !ok {
		t.Fatal("instance did not survive the daemon's kill -9, or was not found")
	}
	if inst.Port != port {
		t.Fatalf("adopted port %d, want %d", inst.Port, port)
	}
	adopted, err := e.Start(ctx, "main", engine.InstanceSpec{Port: port})
	if err != nil || adopted.PID != inst.PID {
		t.Fatalf("start after restart: %v (pid %d, running %d)", err, adopted.PID, inst.PID)
	}
	c := connect(t, inst)
	if n := queryInt(t, c, "SELECT 1"); n != 1 {
		t.Fatal("query")
	}
	c.Close(ctx)
	// Not this process's child: Stop must find its end by polling.
	if err := e.Stop(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Instance("main"); ok {
		t.Fatal("instance still running after stop")
	}
	// Gone, or a zombie if this host's init does not reap orphans.
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(inst.PID) + "/stat"); err == nil && !strings.Contains(string(st), ") Z ") {
		t.Fatalf("postmaster %d still runs after stop: %s", inst.PID, st)
	}
}
