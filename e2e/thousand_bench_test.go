package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/twin/api"
)

// TestBenchThousandBranches (PGTWIN_BENCH=1) makes PGTWIN_BENCH_BRANCHES
// (1000) branches on btrfs, one at a time so that each create's time is its
// own, with branches.max_running = PGTWIN_BENCH_RUNNING (50); then reaches
// every URL once (four clients at a time, so the running set turns over),
// and times `pgtwin branches list`.
func TestBenchThousandBranches(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1 to run it")
	}
	n := envInt("PGTWIN_BENCH_BRANCHES", 1000)
	running := envInt("PGTWIN_BENCH_RUNNING", 50)
	d := startItemsDaemon(t, daemonOpts{
		Driver: "btrfs", ImageSize: 32 << 30, Ports: n + 100,
		Branches: fmt.Sprintf("max_running = %d\nmax_branches = %d\nmax_per_user = %d\n", running, n+10, n+10),
		Settings: map[string]string{"wal_init_zero": "off", "max_wal_size": "64MB", "min_wal_size": "32MB", "max_connections": "10"},
	})
	uris := make([]string, n)
	took := make([]time.Duration, n)
	began := time.Now()
	for i := range n {
		t0 := time.Now()
		r := d.cli(root, "branches", "create", fmt.Sprintf("k/b%04d", i), "-o", "json")
		took[i] = time.Since(t0)
		if r.code != 0 {
			t.Fatalf("create %d: %s", i, r)
		}
		var b api.Branch
		if err := jsonUnmarshal(r.stdout, &b); err != nil {
			t.Fatal(err)
		}
		uris[i] = b.ConnectionURI
	}
	created := time.Since(began)
	k := min(10, n)
	fmt.Printf("%d branches created one at a time in %s: create median of the first %d %s, of the last %d %s; 1st %s, %dth %s\n",
		n, created.Round(time.Second), k, median(took[:k]).Round(time.Millisecond), k, median(took[n-k:]).Round(time.Millisecond),
		took[0].Round(time.Millisecond), n, took[n-1].Round(time.Millisecond))

	var mu sync.Mutex
	var failed []string
	reach := time.Now()
	parallel(4, n, func(i int) {
		if err := countItems(uris[i]); err != nil {
			mu.Lock()
			failed = append(failed, fmt.Sprintf("%d: %v", i, err))
			mu.Unlock()
		}
	})
	if len(failed) > 0 {
		t.Errorf("%d of %d URLs failed; first: %s", len(failed), n, failed[0])
	}
	st := d.status(t)
	fmt.Printf("every URL reached once in %s (%d failed); status: running %d, suspended %d, branch memory %d MB\n",
		time.Since(reach).Round(time.Second), len(failed), st.Running, st.Suspended, st.BranchMemory>>20)
	if st.Running > running {
		t.Errorf("%d running, cap %d", st.Running, running)
	}
	var lists []time.Duration
	for range 3 {
		l := time.Now()
		r := d.must(root, "branches", "list")
		lists = append(lists, time.Since(l))
		if rows := strings.Count(strings.TrimSpace(r.stdout), "\n"); rows != n {
			t.Errorf("branches list shows %d rows, want %d", rows, n)
		}
	}
	fmt.Printf("pgtwin branches list with %d branches (%d running): %v\n", n, st.Running, lists)
	if median(lists) >= time.Second {
		t.Errorf("branches list took %s, want under 1s", median(lists))
	}
}
