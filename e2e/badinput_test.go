package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBadInput: each mistake gets one clear sentence on stderr, exit code 1
// (failure) or 2 (usage), and changes nothing.
func TestBadInput(t *testing.T) {
	d := startDaemon(t, daemonOpts{Driver: "copy"})
	d.create(t, root, "dev/keep")
	listBefore := names(d.list(t, root))
	snapsBefore := d.must(root, "snapshots", "list", "-o", "json").stdout

	cases := []struct {
		what string
		args []string
		code int
		want []string // all in stderr (case-insensitive)
	}{
		{"empty name", []string{"branches", "create", ""}, 2, []string{"name"}},
		{"dot-dot name", []string{"branches", "create", ".."}, 2, []string{`".."`}},
		{"dot-dot inside", []string{"branches", "create", "dev/../x"}, 2, []string{".."}},
		{"spaces", []string{"branches", "create", "my branch"}, 2, []string{"my branch"}},
		{"200 characters", []string{"branches", "create", strings.Repeat("a", 200)}, 2, []string{"200"}},
		{"named main", []string{"branches", "create", "main"}, 2, []string{"main"}},
		{"unknown parent", []string{"branches", "create", "dev/orphan", "--parent", "no-such-parent"}, 1, []string{"no-such-parent"}},
		{"duplicate", []string{"branches", "create", "dev/keep"}, 1, []string{"dev/keep", "exists"}},
		{"bad ttl", []string{"branches", "create", "dev/ttl", "--ttl", "forever"}, 2, []string{"forever"}},
		{"get unknown", []string{"branches", "get", "dev/nope"}, 1, []string{"dev/nope"}},
		{"reset unknown", []string{"branches", "reset", "dev/nope"}, 1, []string{"dev/nope"}},
		{"delete unknown", []string{"branches", "delete", "dev/nope"}, 1, []string{"dev/nope"}},
		{"delete unknown snapshot", []string{"snapshots", "delete", "s-nope"}, 1, []string{"s-nope"}},
		{"missing argument", []string{"branches", "create"}, 2, []string{"needs NAME"}},
		{"unknown flag", []string{"branches", "create", "x", "--parnet", "main"}, 2, []string{"--parnet"}},
		{"env output for a list", []string{"branches", "list", "-o", "env"}, 2, []string{"--output env"}},
	}
	for _, c := range cases {
		r := d.cli(root, c.args...)
		if r.code != c.code {
			t.Errorf("%s: exit %d, want %d; %s", c.what, r.code, c.code, r)
		}
		checkOneSentence(t, c.what, r, c.want...)
	}

	// Deleting main is refused, by whichever code the daemon finds fitting,
	// and main keeps working.
	for _, args := range [][]string{{"branches", "delete", "main"}, {"branches", "reset", "main"}} {
		r := d.cli(root, args...)
		if r.code != 1 && r.code != 2 {
			t.Errorf("%v: exit %d, want 1 or 2; %s", args, r.code, r)
		}
		checkOneSentence(t, strings.Join(args, " "), r, "main")
	}
	if st := d.status(t); st.Main.State != "ready" {
		t.Errorf("main is %q after the attempts on it", st.Main.State)
	}
	d.mainQueryInt(t, "SELECT 1")

	if after := names(d.list(t, root)); !slices.Equal(after, listBefore) {
		t.Errorf("bad input changed the branch list: %v -> %v", listBefore, after)
	}
	if after := d.must(root, "snapshots", "list", "-o", "json").stdout; after != snapsBefore {
		t.Errorf("bad input changed the snapshots:\n%s\n->\n%s", snapsBefore, after)
	}
	entries, _ := os.ReadDir(filepath.Join(d.DataDir, "run"))
	if len(entries) != 2 { // main and dev/keep
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		t.Errorf("run dir has %v: want sockets of main and dev/keep only", got)
	}

	t.Run("no daemon", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "pgtwin.sock")
		for _, args := range [][]string{{"branches", "list"}, {"branches", "create", "x"}, {"status"}} {
			r := runCLI(root, append([]string{"--socket", sock}, args...)...)
			if r.code != 1 {
				t.Errorf("%v without a daemon: exit %d, want 1; %s", args, r.code, r)
			}
			checkOneSentence(t, "no daemon", r, sock, "is it running")
		}
		// $PGTWIN_SOCKET is the fallback for --socket.
		r := runCLI(root, "status")
		if r.code != 1 {
			t.Errorf("status with the default socket and no daemon there: %s", r)
		}
	})

	t.Run("malformed config", func(t *testing.T) {
		dir := t.TempDir()
		sock := filepath.Join(dir, "never.sock")
		cfgs := map[string]struct{ body, want string }{
			"syntax.toml":  {"[daemon]\nsocket = \"" + sock + "\"\ndata_dir = \"/nonexistent\n", "line 3"},
			"unknown.toml": {"[daemon]\nsocket = \"" + sock + "\"\n[engine]\ndriverr = \"copy\"\n", "engine.driverr"},
			"value.toml":   {"[daemon]\nsocket = \"" + sock + "\"\n[engine]\nport_range = \"7000-6000\"\n", "engine.port_range"},
		}
		for name, c := range cfgs {
			p := filepath.Join(dir, name)
			os.WriteFile(p, []byte(c.body), 0o644)
			r := runCLI(root, "serve", "--config", p)
			if r.code == 0 {
				t.Errorf("serve with %s: exit 0", name)
			}
			checkOneSentence(t, name, r, p, c.want)
			if _, err := os.Stat(sock); err == nil {
				t.Errorf("serve with %s made its socket", name)
			}
		}
		r := runCLI(root, "serve", "--config", filepath.Join(dir, "absent.toml"))
		if r.code == 0 {
			t.Errorf("serve with an absent --config: exit 0")
		}
		checkOneSentence(t, "absent config", r, "absent.toml")
	})
}

// checkOneSentence: stderr is one line "pgtwin: ..." containing each want,
// and stdout is empty.
func checkOneSentence(t *testing.T, what string, r result, want ...string) {
	t.Helper()
	line := strings.TrimSuffix(r.stderr, "\n")
	if !strings.HasPrefix(line, "pgtwin: ") || strings.Contains(line, "\n") || len(line) < 20 {
		t.Errorf("%s: stderr should be one sentence starting \"pgtwin: \"; got %q", what, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(strings.ToLower(line), strings.ToLower(w)) {
			t.Errorf("%s: stderr %q does not mention %q", what, line, w)
		}
	}
	if r.stdout != "" {
		t.Errorf("%s: stdout should be empty on error, got %q", what, r.stdout)
	}
}
