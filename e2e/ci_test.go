package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/twin/api"
)

// TestCIVerbs: branches create --if-not-exists, set-ttl and rename with the
// real binary, their error cases and exit codes, and renames cut off by
// kill -9 (PGTWIN_FAULT_TRIALS, default 6).
func TestCIVerbs(t *testing.T) {
	d := startDaemon(t, daemonOpts{Driver: "btrfs"})
	other := ensureUser(t, "pgtwinci1", socketGroup)
	d.mainExec(t, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)")
	d.snapshot(t)

	// --if-not-exists: made, then returned unchanged, the note on stderr.
	first := d.must(root, "branches", "create", "preview/pr-7", "--if-not-exists", "-o", "env")
	if !strings.HasPrefix(first.stdout, "DATABASE_URL=postgres://") || first.stderr != "" {
		t.Fatalf("first create: %s", first)
	}
	again := d.must(root, "branches", "create", "preview/pr-7", "--if-not-exists", "--ttl", "1h", "--protect", "-o", "env")
	if again.stdout != first.stdout || !strings.Contains(again.stderr, "already exists") || !strings.Contains(again.stderr, "--ttl, --protect ignored") {
		t.Fatalf("second create: %s", again)
	}
	if b := d.get(t, root, "preview/pr-7"); b.ExpiresAt != nil || b.Protected {
		t.Fatalf("the ignored flags changed the branch: %+v", b)
	}
	if r := d.cli(other, "branches", "create", "preview/pr-7", "--if-not-exists"); r.code != 1 || !strings.Contains(r.stderr, "belongs to another user") {
		t.Fatalf("another user's name: %s", r)
	}
	if r := d.cli(root, "branches", "create", "preview/pr-7"); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("plain create of a taken name: %s", r)
	}

	// set-ttl
	b := decode[api.Branch](t, d.must(root, "branches", "set-ttl", "preview/pr-7", "3h", "-o", "json"))
	if b.ExpiresAt == nil || time.Until(*b.ExpiresAt) < 179*time.Minute || time.Until(*b.ExpiresAt) > 181*time.Minute {
		t.Fatalf("set-ttl 3h: expires %v", b.ExpiresAt)
	}
	if b = decode[api.Branch](t, d.must(root, "branches", "set-ttl", "preview/pr-7", "0", "-o", "json")); b.ExpiresAt != nil {
		t.Fatalf("set-ttl 0: expires %v", b.ExpiresAt)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"branches", "set-ttl", "preview/pr-7", "soon"}, 2, "not a duration"},
		{[]string{"branches", "set-ttl", "nope", "1h"}, 1, "not found"},
		{[]string{"branches", "rename", "preview/pr-7", "dev/-x"}, 2, "starting with '-'"},
		{[]string{"branches", "rename", "preview/pr-7", "main"}, 2, "main"},
		{[]string{"branches", "rename", "nope", "x"}, 1, "not found"},
	} {
		if r := d.cli(root, c.args...); r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("want exit %d and %q: %s", c.code, c.want, r)
		}
	}
	if r := d.cli(other, "branches", "set-ttl", "preview/pr-7", "1h"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("set-ttl of another user's branch: %s", r)
	}

	// rename: same URL; a taken name is refused.
	d.create(t, root, "dev/taken")
	if r := d.cli(root, "branches", "rename", "preview/pr-7", "dev/taken"); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("rename to a taken name: %s", r)
	}
	before := d.get(t, root, "preview/pr-7")
	after := decode[api.Branch](t, d.must(root, "branches", "rename", "preview/pr-7", "release/pr-7", "-o", "json"))
	if after.Name != "release/pr-7" || after.ConnectionURI != before.ConnectionURI || after.Port != before.Port {
		t.Fatalf("rename: %+v, was %+v", after, before)
	}
	if n := queryInt(t, after.ConnectionURI, "SELECT count(*) FROM items"); n != 1 {
		t.Fatalf("renamed branch has %d rows", n)
	}

	// kill -9 at a random moment of a rename of a branch with a child: one
	// name answers after the restart, with the same URL, and the child
	// follows it.
	d.create(t, root, "release/pr-7-kid", "--parent", "release/pr-7")
	start := time.Now()
	d.must(root, "branches", "rename", "release/pr-7", "release/pr-7b")
	took := time.Since(start)
	cur := "release/pr-7b"
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	// Most of a CLI rename is the process starting; the kill lands anywhere
	// in it (the unit test TestCIVerbs sets up the one moment a kill could
	// leave half a rename, deterministically).
	for i := range envInt("PGTWIN_FAULT_TRIALS", 6) {
		to := fmt.Sprintf("release/r%d", i)
		delay := time.Duration(rng.Int64N(int64(took) + 1))
		done := make(chan result, 1)
		go func() { done <- d.cli(root, "branches", "rename", cur, to) }()
		time.Sleep(delay)
		d.kill9()
		r := <-done
		d.start()
		bs := d.list(t, root)
		_, oldThere := find(bs, cur)
		nb, newThere := find(bs, to)
		what := fmt.Sprintf("trial %d: rename %s %s, kill -9 after %s (CLI exit %d)", i, cur, to, delay, r.code)
		switch {
		case oldThere == newThere:
			t.Fatalf("%s: old there %v, new there %v", what, oldThere, newThere)
		case r.code == 0 && !newThere:
			t.Fatalf("%s: rename returned ok but the old name is back", what)
		}
		if newThere {
			cur = nb.Name
		}
		b := mustFind(t, bs, cur)
		if b.ConnectionURI != after.ConnectionURI {
			t.Fatalf("%s: URL changed to %s", what, redact(b.ConnectionURI))
		}
		if kid := mustFind(t, bs, "release/pr-7-kid"); kid.Parent != cur {
			t.Fatalf("%s: the child's parent is %q, the branch is %q", what, kid.Parent, cur)
		}
		t.Logf("%s: now %s", what, cur)
	}
	if n := queryInt(t, after.ConnectionURI, "SELECT count(*) FROM items"); n != 1 {
		t.Fatalf("after the kills the branch has %d rows", n)
	}
	d.reset(t, root, "release/pr-7-kid") // snapshots its parent by its new name
}

// TestCIRecipes runs the shell of docs/ci.md's GitHub Actions and GitLab CI
// steps as written, as a runner would: create, re-run (the same branch
// reused), use DATABASE_URL, delete on close.
func TestCIRecipes(t *testing.T) {
	doc, err := os.ReadFile("../docs/ci.md")
	if err != nil {
		t.Fatalf("docs/ci.md: %v", err)
	}
	text := string(doc)
	d := startDaemon(t, daemonOpts{Driver: "btrfs"})
	d.mainExec(t, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2)")
	d.snapshot(t)
	runner := ensureUser(t, "pgtwinci2", socketGroup)

	for _, ci := range []struct {
		name, create, use, remove, branchLine, envFile string
		env                                            []string
	}{
		{name: "github", create: "- name: Create or reuse the preview branch", use: "- name: Migrate and test",
			remove: "- name: Delete the preview branch", branchLine: "BRANCH: preview/pr-${{ github.event.pull_request.number }}",
			envFile: "GITHUB_ENV", env: []string{"BRANCH=preview/pr-42"}},
		{name: "gitlab", create: "preview-db:", use: "test:", remove: "preview-db-stop:", branchLine: "BRANCH: preview/pr-$CI_MERGE_REQUEST_IID",
			envFile: "pgtwin.env", env: []string{"CI_MERGE_REQUEST_IID=43", "BRANCH=preview/pr-43"}},
	} {
		t.Run(ci.name, func(t *testing.T) {
			if !strings.Contains(text, ci.branchLine) {
				t.Fatalf("docs/ci.md no longer says %q; keep the test's BRANCH in step with it", ci.branchLine)
			}
			// The runner's user must reach its work dir; t.TempDir's parent is 0700.
			work, err := os.MkdirTemp("", "pgtwin-ci-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(work) })
			os.Chmod(work, 0o777)
			envPath := filepath.Join(work, ci.envFile)
			env := append([]string{"PATH=" + filepath.Dir(binary) + ":/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C",
				"PGTWIN_SOCKET=" + d.Socket, "GITHUB_ENV=" + envPath}, ci.env...)
			sh := func(step string, extra ...string) string {
				t.Helper()
				script := shellOf(t, text, step)
				cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
				cmd.Dir, cmd.Env = work, append(env, extra...)
				cmd.SysProcAttr = runnerAttr(runner)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("step %q failed (%v):\n%s\n%s", step, err, script, out.String())
				}
				return out.String()
			}
			sh(ci.create)
			url1 := databaseURL(t, envPath)
			execURI(t, url1, "CREATE TABLE migrated (x int)")
			sh(ci.use, "DATABASE_URL="+url1)
			// A re-run: the same branch, its migration kept, the expiry pushed out.
			if ci.envFile == "GITHUB_ENV" {
				os.Remove(envPath)
			}
			out := sh(ci.create)
			if !strings.Contains(out, "already exists") {
				t.Errorf("the re-run did not say it reused the branch: %q", out)
			}
			if url2 := databaseURL(t, envPath); url2 != url1 {
				t.Fatalf("the re-run exported another URL: %s, was %s", redact(url2), redact(url1))
			}
			if !tableExists(t, url1, "migrated") {
				t.Fatal("the re-run lost the branch's migration")
			}
			name := strings.TrimPrefix(ci.env[len(ci.env)-1], "BRANCH=")
			b := d.get(t, runner, name)
			if b.ExpiresAt == nil || time.Until(*b.ExpiresAt) < 6*24*time.Hour {
				t.Errorf("set-ttl 7d did not set the expiry: %v", b.ExpiresAt)
			}
			sh(ci.remove)
			if _, there := find(d.list(t, runner), name); there {
				t.Fatal("the branch is still there after the close step")
			}
			sh(ci.remove) // closing twice is not an error
		})
	}
}

// shellOf is the shell of the CI step or job whose line is anchor: the
// `run: |` block after it (GitHub), or the items of its `script:` list
// (GitLab).
func shellOf(t *testing.T, doc, anchor string) string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	i := 0
	for i < len(lines) && strings.TrimSpace(lines[i]) != anchor {
		i++
	}
	if i == len(lines) {
		t.Fatalf("docs/ci.md has no line %q", anchor)
	}
	indent := func(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
	for i++; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "run: |" || l == "script:" {
			break
		}
	}
	if i == len(lines) {
		t.Fatalf("docs/ci.md: no run: | or script: after %q", anchor)
	}
	base := indent(lines[i])
	list := strings.TrimSpace(lines[i]) == "script:"
	var sb strings.Builder
	for i++; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" {
			continue
		}
		if indent(l) <= base && !(list && indent(l) == base && strings.HasPrefix(strings.TrimSpace(l), "- ")) {
			break
		}
		s := strings.TrimSpace(l)
		if list {
			s = strings.TrimPrefix(s, "- ")
		}
		sb.WriteString(s + "\n")
	}
	if sb.Len() == 0 {
		t.Fatalf("docs/ci.md: the step %q has no shell", anchor)
	}
	return sb.String()
}

func databaseURL(t *testing.T, envPath string) string {
	t.Helper()
	b, err := os.ReadFile(envPath)
	if err != nil {
		t.Fatalf("the create step wrote no %s: %v", envPath, err)
	}
	var url string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "DATABASE_URL="); ok {
			url = v
		} else if l != "" {
			t.Fatalf("%s has a line that is not DATABASE_URL=: %q", envPath, l)
		}
	}
	if url == "" {
		t.Fatalf("%s has no DATABASE_URL", envPath)
	}
	return url
}

func runnerAttr(u osUser) *syscall.SysProcAttr {
	if u.Cred == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: u.Cred}
}
