package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the pgtwin built for this run; every OS user may execute it.
var binary string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// Daemons here keep to the user-space proxy: a kernel redirect would
	// change the host's nftables ruleset. Tests of the redirect run in their
	// own network namespace with PGTWIN_REDIRECT=on.
	if os.Getenv("PGTWIN_REDIRECT") == "" {
		os.Setenv("PGTWIN_REDIRECT", "off")
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: tests must run as root (loop mounts, useradd, postgres as its own user)")
		return 1
	}
	dir, err := os.MkdirTemp("", "pgtwin-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // other test users run the binary from here
	binary = filepath.Join(dir, "pgtwin")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	build := exec.Command(goBin, "build", "-ldflags", "-X main.version=e2e", "-o", binary, "../cmd/pgtwin")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build ./cmd/pgtwin:", err)
		return 1
	}
	return m.Run()
}
