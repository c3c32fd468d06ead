package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the highest overall exposure systemd-analyze may report
// (issue 10); pgtwin.service comments every exposure that remains.
const maxExposure = 3.5

const unitFile = "pgtwin.service"

// analyze runs systemd-analyze with args and returns stdout and stderr. It
// fails the test when the tool is missing: the check must not vanish on a
// host without it.
func analyze(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin, lerr := exec.LookPath("systemd-analyze")
	if lerr != nil {
		t.Fatalf("systemd-analyze not found: install the Debian package systemd (make deps): %v", lerr)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	// Plain text: no colours, no pager, no emoji to trip the parsing.
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "LC_ALL=C.UTF-8")
	err = cmd.Run()
	return out.String(), errb.String(), err
}

func unitPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var overallRe = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+(?:\.[0-9]+)?)`)

func TestUnitExposure(t *testing.T) {
	out, stderr, err := analyze(t, "security", "--offline=true", "--no-pager", unitPath(t))
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s%s", err, out, stderr)
	}
	// systemd ignores a key it does not know, so a misspelt hardening
	// setting would silently protect nothing.
	if strings.TrimSpace(stderr) != "" {
		t.Errorf("systemd-analyze complains about the unit:\n%s", stderr)
	}
	m := overallRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure in systemd-analyze's output:\n%s", out)
	}
	got, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("overall exposure %q: %v", m[1], err)
	}
	if got > maxExposure {
		t.Fatalf("%s: overall exposure %.1f, want at most %.1f:\n%s", unitFile, got, maxExposure, out)
	}
	t.Logf("%s: overall exposure %.1f (at most %.1f)", unitFile, got, maxExposure)
}

// TestUnitVerify runs systemd-analyze verify on a copy of the unit whose
// ExecStart names an executable that exists here: verify insists on it, and
// the test must not depend on pgtwin being installed in /usr/local/bin.
func TestUnitVerify(t *testing.T) {
	b, err := os.ReadFile(unitPath(t))
	if err != nil {
		t.Fatal(err)
	}
	const installed = "ExecStart=/usr/local/bin/pgtwin "
	if !bytes.Contains(b, []byte(installed)) {
		t.Fatalf("%s: no %q line (README's install steps put the binary there)", unitFile, installed)
	}
	stand, err := exec.LookPath("true")
	if err != nil {
		t.Fatalf("no true(1) to stand in for pgtwin: %v", err)
	}
	b = bytes.Replace(b, []byte(installed), []byte("ExecStart="+stand+" "), 1)
	copyPath := filepath.Join(t.TempDir(), unitFile)
	if err := os.WriteFile(copyPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := analyze(t, "verify", "--man=no", copyPath)
	if err != nil || strings.TrimSpace(out+stderr) != "" {
		t.Fatalf("systemd-analyze verify %s (ExecStart=%s): %v\n%s%s", unitFile, stand, err, out, stderr)
	}
}
