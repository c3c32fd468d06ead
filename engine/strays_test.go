package engine_test

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/engine"
)

// A daemon killed right after launching postgres leaves a process that has
// not yet written postmaster.pid. Stop, Destroy and Start must find it by its
// working directory and kill it, or it would lock a later clone of the volume.
func TestStrayWithoutPidFileIsKilled(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "copy", t.TempDir())
	f.init("v")

	stray := func() <-chan struct{} {
		cmd := exec.Command("sleep", "300")
		cmd.Dir = f.e.DataPath("v")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() { cmd.Process.Kill() })
		return done
	}
	gone := func(done <-chan struct{}) bool {
		select {
		case <-done:
			return true
		case <-time.After(5 * time.Second):
			return false
		}
	}

	s := stray()
	if err := f.e.Stop(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if !gone(s) {
		t.Fatal("Stop left a process working in the data directory")
	}

	s = stray()
	port, err := f.e.AllocatePort(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Start(ctx, "v", engine.InstanceSpec{Port: port}); err != nil {
		t.Fatalf("start with a stray present: %v", err)
	}
	if !gone(s) {
		t.Fatal("Start left a stray running")
	}
	if err := f.e.Destroy(ctx, "v"); err != nil {
		t.Fatal(err)
	}
}
