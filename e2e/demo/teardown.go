package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// teardown stops the daemon and every postgres the demo started (the daemon
// leaves branches running on purpose, to adopt them after a restart), unmounts
// the pool and removes the directory.
func teardown(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		fmt.Println("nothing to stop:", dir, "does not exist")
		return nil
	}
	if b, err := os.ReadFile(filepath.Join(dir, "daemon.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			stopPID(pid, syscall.SIGTERM)
		}
	}
	for _, pid := range postmastersUnder(dir) {
		stopPID(pid, syscall.SIGQUIT)
	}
	for _, m := range mountsUnder(dir) {
		if out, err := exec.Command("umount", "-d", m).CombinedOutput(); err != nil {
			exec.Command("umount", "-l", "-d", m).Run()
			fmt.Fprintf(os.Stderr, "umount %s: %s", m, out)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	fmt.Println("demo stopped and removed:", dir)
	return nil
}

func stopPID(pid int, sig syscall.Signal) {
	if syscall.Kill(pid, sig) != nil {
		return
	}
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// postmastersUnder finds postgres postmasters whose -D is under dir.
func postmastersUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
		if len(args) < 3 || filepath.Base(string(args[0])) != "postgres" {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if string(args[i]) == "-D" && strings.HasPrefix(string(args[i+1]), dir+"/") {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// mountsUnder lists mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var ms []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			ms = append(ms, fields[4])
		}
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i]) > len(ms[j]) })
	return ms
}
