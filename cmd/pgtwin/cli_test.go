package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/twin/api"
)

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), exitCode(err)
}

func TestUsageErrorsExitTwo(t *testing.T) {
	t.Setenv(socketEnv, filepath.Join(t.TempDir(), "none.sock"))
	cases := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"branches", "crate", "x"}, `did you mean "create"`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"branches", "create"}, "branches create needs NAME"},
		{[]string{"branches", "create", "a", "b"}, "takes 1 argument"},
		{[]string{"branches", "get"}, "branches get needs NAME"},
		{[]string{"branches", "reset"}, "needs NAME"},
		{[]string{"branches", "delete"}, "needs NAME"},
		{[]string{"branch", "list", "extra"}, "takes no arguments"},
		{[]string{"snapshots", "delete"}, "needs NAME"},
		{[]string{"cs"}, "connection-string needs NAME"},
		{[]string{"branches", "list", "-o", "env"}, "--output env prints DATABASE_URL for one branch"},
		{[]string{"snapshots", "list", "-o", "env"}, "--output env"},
		{[]string{"status", "-o", "env"}, "--output env"},
		{[]string{"branches", "list", "-o", "yaml"}, `--output must be table, json or env, not "yaml"`},
		{[]string{"branches", "create", "x", "--protect=maybe"}, "invalid argument"},
		{[]string{"serve", "extra"}, "takes no arguments"},
	}
	for _, c := range cases {
		stdout, stderr, code := run(t, c.args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, exitUsage, stderr)
		}
		if !strings.HasPrefix(stderr, "pgtwin: ") || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: stderr %q, want one line starting \"pgtwin: \" containing %q", c.args, stderr, c.want)
		}
		if stdout != "" {
			t.Errorf("%v: nothing belongs on stdout on error, got %q", c.args, stdout)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"branches"}, {"branch", "--help"}, {"snapshot"}, {"branches", "create", "--help"}} {
		out, stderr, code := run(t, args...)
		if code != 0 || !strings.Contains(out, "Usage:") || stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want help on stdout and exit 0", args, code, out, stderr)
		}
	}
	out, _, code := run(t, "version")
	if code != 0 || out != "pgtwin dev\n" {
		t.Errorf("version: exit %d, %q", code, out)
	}
	out, _, _ = run(t, "version", "-o", "json")
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); err != nil || v["version"] != "dev" {
		t.Errorf("version -o json: %q (%v)", out, err)
	}
	out, _, code = run(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "pgtwin") {
		t.Errorf("completion bash: exit %d", code)
	}
}

func TestDaemonNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "pgtwin.sock")
	for _, args := range [][]string{
		{"status"}, {"branches", "list"}, {"branches", "create", "dev/x"}, {"cs", "dev/x"}, {"snapshots", "list"},
	} {
		_, stderr, code := run(t, append(args, "--socket", sock)...)
		want := "pgtwin: cannot reach the daemon at " + sock + ": is it running? (systemctl status pgtwin)\n"
		if code != exitFailure || stderr != want {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", args, code, stderr, want)
		}
	}
}

func TestSocketResolution(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pgtwin.toml")
	if err := os.WriteFile(cfg, []byte("[daemon]\nsocket = \""+dir+"/from-config.sock\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(env string, args []string, want string) {
		t.Helper()
		t.Setenv(socketEnv, env)
		_, stderr, _ := run(t, append([]string{"status"}, args...)...)
		if !strings.Contains(stderr, "daemon at "+want+":") {
			t.Errorf("env %q args %v: stderr %q, want socket %s", env, args, stderr, want)
		}
	}
	check("", []string{"--socket", dir + "/flag.sock", "--config", cfg}, dir+"/flag.sock")
	check(dir+"/env.sock", []string{"--config", cfg}, dir+"/env.sock")
	check("", []string{"--config", cfg}, dir+"/from-config.sock")
	if _, err := os.Stat(defaultConfigPath); errors.Is(err, os.ErrNotExist) {
		check("", nil, defaultSocket)
	}

	// An explicitly named config that is broken is an error naming it.
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[daemon]\nsocket = \n"), 0o644)
	t.Setenv(socketEnv, "")
	_, stderr, code := run(t, "status", "--config", bad)
	if code != exitFailure || !strings.Contains(stderr, bad) || !strings.Contains(stderr, "line 2") {
		t.Errorf("broken --config: exit %d, stderr %q; want 1 naming the file and line 2", code, stderr)
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"syntax.toml":  "[daemon]\nlog_level = \"info\"\nsocket = \"unterminated\n",
		"unknown.toml": "[daemon]\nsockt = \"/x\"\n",
		"value.toml":   "[engine]\ndriver = \"zfs\"\n",
	}
	want := map[string]string{
		"syntax.toml":  "line 3",
		"unknown.toml": "daemon.sockt",
		"value.toml":   "engine.driver",
	}
	for name, body := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		_, stderr, code := run(t, "serve", "--config", p)
		if code != exitFailure || !strings.Contains(stderr, p) || !strings.Contains(stderr, want[name]) {
			t.Errorf("%s: exit %d, stderr %q; want 1 naming %s and %q", name, code, stderr, p, want[name])
		}
	}
	_, stderr, code := run(t, "serve", "--config", filepath.Join(dir, "missing.toml"))
	if code != exitFailure || !strings.Contains(stderr, "missing.toml") || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing config: exit %d, stderr %q", code, stderr)
	}
}

func TestExitCodeOfDaemonErrors(t *testing.T) {
	cases := []struct {
		err  error
		code int
	}{
		{nil, 0},
		{&api.StatusError{Code: 400, Message: "invalid branch name"}, exitUsage},
		{&api.StatusError{Code: 404, Message: "no branch x"}, exitFailure},
		{&api.StatusError{Code: 409, Message: "exists"}, exitFailure},
		{fmt.Errorf("wrapped: %w", &api.StatusError{Code: 400}), exitUsage},
		{usagef("x"), exitUsage},
		{errors.New("x"), exitFailure},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.code {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.code)
		}
	}
	msg := describe(&api.StatusError{Code: 404, Message: `no branch "dev/x"`})
	if !strings.Contains(msg, "pgtwin branches list") {
		t.Errorf("404 should point at branches list: %q", msg)
	}
}

func sampleBranch() api.Branch {
	exp := time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC)
	return api.Branch{
		Name: "dev/alice", Parent: "main", Snapshot: "s-20261121T020000Z", State: "ready", Owner: "alice",
		CreatedAt: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), ExpiresAt: &exp, Port: 6501,
		ConnectionURI: "postgres://alice:SECRET@127.0.0.1:6501/app", ChangedBytes: 1 << 20,
	}
}

func TestBranchOutput(t *testing.T) {
	now = func() time.Time { return time.Date(2026, 11, 21, 9, 5, 0, 0, time.UTC) }
	t.Cleanup(func() { now = time.Now })
	b := sampleBranch()

	var out bytes.Buffer
	a := &app{stdout: &out, output: "json"}
	if err := a.printBranch(&b); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	for _, k := range []string{"name", "parent", "snapshot", "state", "owner", "created_at", "expires_at", "protected", "port", "connection_uri", "changed_bytes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("json lacks SPEC key %q: %s", k, out.String())
		}
	}
	if m["created_at"] != "2026-11-21T09:00:00Z" || m["port"] != float64(6501) {
		t.Errorf("json values: %v", m)
	}

	out.Reset()
	a.output = "env"
	a.printBranch(&b)
	if out.String() != "DATABASE_URL=postgres://alice:SECRET@127.0.0.1:6501/app\n" {
		t.Errorf("env: %q", out.String())
	}

	out.Reset()
	a.output = "table"
	a.printBranch(&b)
	for _, want := range []string{"Name:      dev/alice", "Created:   5m ago", "Expires:   in 1h55m", "Changed:   1.0 MiB", "URL:       postgres://alice:SECRET@127.0.0.1:6501/app"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}

	// A list is a JSON array, also when empty.
	out.Reset()
	a.output = "json"
	a.printBranches(nil)
	if strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("empty list json: %q", out.String())
	}

	out.Reset()
	a.output = "table"
	b2 := b
	b2.Name, b2.Owner, b2.ExpiresAt, b2.Protected = "preview/pr-42-long-name", "bob", nil, true
	a.printBranches([]api.Branch{b, b2})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table: want header + 2 rows:\n%s", out.String())
	}
	col := strings.Index(lines[0], "PARENT")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "main") {
			t.Errorf("columns not aligned:\n%s", out.String())
		}
	}
	if !strings.Contains(lines[2], "ready (protected)") || !strings.Contains(lines[2], "never") {
		t.Errorf("row: %q", lines[2])
	}
}

func TestTree(t *testing.T) {
	now = func() time.Time { return time.Date(2026, 11, 21, 9, 5, 0, 0, time.UTC) }
	t.Cleanup(func() { now = time.Now })
	mk := func(name, parent, snap string) api.Branch {
		return api.Branch{Name: name, Parent: parent, Snapshot: snap, State: "ready", Owner: "alice"}
	}
	ss := []api.Snapshot{
		{ID: "s-1", CreatedAt: now().Add(-2 * time.Hour), SizeBytes: 1 << 30},
		{ID: "s-2", CreatedAt: now().Add(-1 * time.Hour), SizeBytes: 1 << 30},
		{ID: "s-b1", CreatedAt: now().Add(-time.Minute)}, // snapshot of branch a, taken for a/child
	}
	bs := []api.Branch{mk("b", "main", "s-2"), mk("a", "main", "s-1"), mk("a/child", "a", "s-b1"), mk("c", "main", "s-2"), mk("orphan", "someone-else", "s-x")}
	var out bytes.Buffer
	if err := printTree(&out, bs, ss); err != nil {
		t.Fatal(err)
	}
	want := `main
├── s-1  2h00m ago  1.0 GiB
│   └── a  ready  alice
│       └── a/child  ready  alice
├── s-2  1h00m ago  1.0 GiB
│   ├── b  ready  alice
│   └── c  ready  alice
└── orphan  ready  alice  (from someone-else)
`
	if out.String() != want {
		t.Errorf("tree:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB", 300 << 20: "300 MiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLoggerJSONWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("hidden")
	log.Warn().Str("branch", "dev/x").Msg("shown")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("log line is not JSON: %q", buf.String())
	}
	if m["message"] != "shown" || m["branch"] != "dev/x" || m["level"] != "warn" || m["time"] == nil {
		t.Errorf("log line: %v", m)
	}
	if _, err := newLogger(&buf, "loud"); err == nil {
		t.Errorf("an unknown level should be an error")
	}
}
