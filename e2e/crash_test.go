package e2e

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/twin/api"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestKill9DuringOperations kills the daemon at a random moment during
// create, reset and delete, restarts it, and checks that every branch is
// wholly there and ready or wholly gone, with no volume, port or postgres
// process left over. PGTWIN_FAULT_TRIALS sets the number of trials (20).
func TestKill9DuringOperations(t *testing.T) {
	trials := envInt("PGTWIN_FAULT_TRIALS", 20)
	d := startDaemon(t, daemonOpts{Driver: "btrfs"})
	d.mainExec(t, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 1000)")
	d.snapshot(t)

	// How long each operation takes undisturbed sets the range of the
	// random kill moment.
	began := time.Now()
	d.create(t, root, "crash/seed")
	createTook := time.Since(began)
	began = time.Now()
	d.reset(t, root, "crash/seed")
	resetTook := time.Since(began)
	t.Logf("undisturbed: create %s, reset %s", createTook.Round(time.Millisecond), resetTook.Round(time.Millisecond))
	d.verifyConsistent(t, "before the trials")

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	seed := rng.Uint64()
	t.Logf("seed %d", seed)
	rng = rand.New(rand.NewPCG(seed, 7))
	counts := map[string]int{}
	for i := 0; i < trials; i++ {
		bs := d.list(t, root)
		op := []string{"create", "reset", "delete"}[i%3]
		if op == "create" && len(bs) >= 8 {
			op = "delete"
		}
		// A reset or delete needs a target; a create cut off early leaves
		// none, so one is made undisturbed.
		if op != "create" && len(bs) < 2 {
			d.create(t, root, fmt.Sprintf("crash/pre%d", i))
			bs = d.list(t, root)
		}
		var name string
		var args []string
		switch op {
		case "create":
			name = fmt.Sprintf("crash/b%d", i)
			args = []string{"branches", "create", name}
		case "reset":
			name = bs[rng.IntN(len(bs))].Name
			execURI(t, mustFind(t, bs, name).ConnectionURI, fmt.Sprintf("INSERT INTO items VALUES (%d)", 100000+i))
			args = []string{"branches", "reset", name}
		case "delete":
			name = bs[rng.IntN(len(bs))].Name
			args = []string{"branches", "delete", name}
		}
		took := createTook
		if op == "reset" {
			took = resetTook
		}
		// From at once to well after the undisturbed duration, so some
		// kills land before, during and after each step.
		delay := time.Duration(rng.Int64N(int64(took)*2 + 1))

		done := make(chan result, 1)
		go func() { done <- d.cli(root, args...) }()
		time.Sleep(delay)
		d.kill9()
		r := <-done
		completed := r.code == 0
		counts[fmt.Sprintf("%s/%v", op, completed)]++
		what := fmt.Sprintf("trial %d: %s %s, kill -9 after %s (CLI %s)", i, op, name, delay.Round(time.Millisecond),
			map[bool]string{true: "had returned ok", false: "was cut off"}[completed])
		d.start()

		after := d.list(t, root)
		b, there := find(after, name)
		switch op {
		case "create":
			if completed && !there {
				t.Errorf("%s: the branch is gone though create returned ok", what)
			}
		case "reset":
			if !there {
				t.Errorf("%s: a reset lost the branch", what)
			} else if completed && queryInt(t, b.ConnectionURI, fmt.Sprintf("SELECT count(*) FROM items WHERE id = %d", 100000+i)) != 0 {
				t.Errorf("%s: reset returned ok but the branch still has the write made before it", what)
			}
		case "delete":
			if completed && there {
				t.Errorf("%s: the branch is there though delete returned ok", what)
			}
		}
		d.verifyConsistent(t, what)
		if t.Failed() {
			t.Fatalf("stopping after %s", what)
		}
	}
	t.Logf("%d trials (op/CLI completed before the kill): %v", trials, counts)
}

func mustFind(t *testing.T, bs []api.Branch, name string) api.Branch {
	t.Helper()
	b, ok := find(bs, name)
	if !ok {
		t.Fatalf("branch %s not in %v", name, names(bs))
	}
	return b
}

// verifyConsistent checks from the outside that what the daemon lists is
// exactly what exists: every branch ready and answering, one volume, one
// port and one postmaster for each branch and for main, nothing else.
func (d *daemon) verifyConsistent(t *testing.T, when string) {
	t.Helper()
	st := d.status(t)
	bs := d.list(t, root)
	snaps := decode[[]api.Snapshot](t, d.must(root, "snapshots", "list", "-o", "json"))

	// Main listens on its unix socket only: no branch owner may reach it.
	var wantPorts []int
	for _, b := range bs {
		if b.State != api.StateReady {
			t.Errorf("%s: branch %s is %s, want ready or gone", when, b.Name, b.State)
			continue
		}
		wantPorts = append(wantPorts, b.Port)
		if n := queryInt(t, b.ConnectionURI, "SELECT count(*) FROM items WHERE id <= 1000"); n != 1000 {
			t.Errorf("%s: branch %s has %d of main's 1000 rows", when, b.Name, n)
		}
	}
	sort.Ints(wantPorts)

	// The table view says the same.
	table := d.must(root, "branches", "list").stdout
	rows := strings.Count(strings.TrimSpace(table), "\n") // minus the header line
	if len(bs) == 0 {
		rows = 0
	}
	if rows != len(bs) {
		t.Errorf("%s: branches list shows %d rows, -o json %d branches:\n%s", when, rows, len(bs), table)
	}

	// Ports: exactly the branches' listen in the range.
	if got := listeningPorts(t, d.PortLo, d.PortHi); !slices.Equal(got, wantPorts) {
		t.Errorf("%s: listening ports in %d-%d are %v, want the branches' %v (main: %d, unix socket only)", when, d.PortLo, d.PortHi, got, wantPorts, st.Main.Port)
	}

	// Processes: one postmaster per branch and main, each on its own volume.
	pms := postmasters(d.DataDir)
	if len(pms) != len(bs)+1 {
		var dirs []string
		for _, p := range pms {
			dirs = append(dirs, p.pgdata)
		}
		t.Errorf("%s: %d postmasters under the data dir (%v), want %d (main + %d branches)", when, len(pms), dirs, len(bs)+1, len(bs))
	}

	// Volumes: main, each snapshot, each branch, and the template a
	// replace of main clones once a sync has run; nothing half-made.
	root, vols := volumes(t, d.DataDir)
	want := 1 + len(snaps) + len(bs)
	if slices.ContainsFunc(vols, func(v string) bool { return strings.HasPrefix(v, "tmpl-") }) {
		want++
	}
	if len(vols) != want {
		t.Errorf("%s: %d volumes in %s (%v), want %d (main + %d snapshots + %d branches)", when, len(vols), root, vols, want, len(snaps), len(bs))
	}
	if testing.Verbose() {
		t.Logf("%s: %d branches, ports %v, %d postmasters, volumes in %s: %v", when, len(bs), wantPorts, len(pms), root, vols)
	}
	onVolume := map[string]int{}
	for _, p := range pms {
		vol := filepath.Base(filepath.Dir(p.pgdata))
		if filepath.Dir(filepath.Dir(p.pgdata)) != root || !slices.Contains(vols, vol) {
			t.Errorf("%s: postmaster %d runs on %s, not on a volume of %s", when, p.pid, p.pgdata, root)
		}
		if other, dup := onVolume[vol]; dup {
			t.Errorf("%s: postmasters %d and %d both run on volume %s", when, other, p.pid, vol)
		}
		onVolume[vol] = p.pid
	}
}

// volumes finds the engine's volume root (the directory whose entries hold
// pgdata directories) and lists every entry in it.
func volumes(t *testing.T, dataDir string) (string, []string) {
	t.Helper()
	var roots []string
	for _, pattern := range []string{"*/*/pgdata", "*/*/*/pgdata"} {
		m, _ := filepath.Glob(filepath.Join(dataDir, pattern))
		for _, p := range m {
			r := filepath.Dir(filepath.Dir(p))
			if !slices.Contains(roots, r) {
				roots = append(roots, r)
			}
		}
	}
	if len(roots) != 1 {
		t.Fatalf("cannot tell the volume root under %s: candidates %v", dataDir, roots)
	}
	entries, err := os.ReadDir(roots[0])
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return roots[0], out
}

// listeningPorts reads /proc/net/tcp{,6} for sockets in LISTEN in [lo, hi].
func listeningPorts(t *testing.T, lo, hi int) []int {
	t.Helper()
	seen := map[int]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" {
				continue
			}
			_, portHex, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseInt(portHex, 16, 32)
			if err == nil && int(p) >= lo && int(p) <= hi {
				seen[int(p)] = true
			}
		}
		fh.Close()
	}
	var out []int
	for p := range seen {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}
