package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/twin/api"
)

// scaleCap is branches.max_running in TestScaleBranches.
const scaleCap = 20

// TestScaleBranches makes PGTWIN_SCALE_BRANCHES (300) branches of a small
// main with at most 20 running, then reaches each once in random order: every
// query succeeds, and neither the daemon's running count nor the postmasters
// in /proc ever exceed the cap. Listing them all takes under a second.
func TestScaleBranches(t *testing.T) {
	n := envInt("PGTWIN_SCALE_BRANCHES", 300)
	began := time.Now()
	d := startItemsDaemon(t, daemonOpts{
		Driver: scaleDriver(), ImageSize: 16 << 30, Ports: n + 100,
		Branches: fmt.Sprintf("max_running = %d\nmax_branches = %d\n", scaleCap, n+10),
		// Small instances: many start and stop.
		Settings: map[string]string{"wal_init_zero": "off", "max_wal_size": "64MB", "min_wal_size": "32MB", "max_connections": "10"},
	})

	// Watch the running count from /proc and from status for the whole run.
	var maxProc, maxStatus atomic.Int64
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(2)
	go func() {
		defer watch.Done()
		for {
			if k := int64(len(branchPostmasters(d))); k > maxProc.Load() {
				maxProc.Store(k)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	go func() {
		defer watch.Done()
		for {
			if r := d.cli(root, "status", "-o", "json"); r.code == 0 {
				var st api.Status
				if err := jsonUnmarshal(r.stdout, &st); err == nil && int64(st.Running) > maxStatus.Load() {
					maxStatus.Store(int64(st.Running))
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	stopWatch := func() {
		select {
		case <-stop:
		default:
			close(stop)
			watch.Wait()
		}
	}
	defer stopWatch()

	// Create, a few at a time.
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("scale/b%03d", i)
	}
	uris := make([]string, n)
	var errs []string
	var mu sync.Mutex
	parallel(4, n, func(i int) {
		r := d.cli(root, "branches", "create", names[i], "-o", "json")
		mu.Lock()
		defer mu.Unlock()
		if r.code != 0 {
			errs = append(errs, r.String())
			return
		}
		var b api.Branch
		if err := jsonUnmarshal(r.stdout, &b); err != nil {
			errs = append(errs, err.Error())
			return
		}
		uris[i] = b.ConnectionURI
	})
	if len(errs) > 0 {
		t.Fatalf("%d of %d creates failed; first: %s", len(errs), n, errs[0])
	}
	created := time.Since(began)
	t.Logf("%d branches created in %s", n, created.Round(time.Millisecond))

	// Reach each once, in random order, four clients at a time.
	order := rand.Perm(n)
	var failed atomic.Int64
	var firstErr atomic.Value
	reachStart := time.Now()
	parallel(4, n, func(k int) {
		i := order[k]
		if err := countItems(uris[i]); err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v", names[i], err))
		}
	})
	reached := time.Since(reachStart)
	stopWatch()
	if f := failed.Load(); f > 0 {
		t.Errorf("%d of %d branches failed their query; first: %v", f, n, firstErr.Load())
	}
	t.Logf("each of %d branches reached once in %s; max running seen: %d in /proc, %d in status (cap %d)",
		n, reached.Round(time.Millisecond), maxProc.Load(), maxStatus.Load(), scaleCap)
	if maxProc.Load() > scaleCap || maxStatus.Load() > scaleCap {
		t.Errorf("running branches exceeded the cap %d: %d postmasters seen in /proc, status said %d", scaleCap, maxProc.Load(), maxStatus.Load())
	}
	if maxProc.Load() == 0 {
		t.Errorf("no branch postmaster was ever seen in /proc")
	}

	// The list of all of them, as a user types it.
	listStart := time.Now()
	r := d.must(root, "branches", "list")
	took := time.Since(listStart)
	if rows := strings.Count(strings.TrimSpace(r.stdout), "\n"); rows != n {
		t.Errorf("branches list shows %d rows, want %d", rows, n)
	}
	if took >= time.Second {
		t.Errorf("pgtwin branches list with %d branches took %s, want under 1s", n, took.Round(time.Millisecond))
	}
	t.Logf("pgtwin branches list with %d branches: %s", n, took.Round(time.Millisecond))

	bs := d.list(t, root)
	states := map[string]int{}
	for _, b := range bs {
		states[b.State]++
	}
	st := d.status(t)
	if len(bs) != n || states[api.StateReady]+states[api.StateSuspended] != n || st.Running > scaleCap {
		t.Errorf("after the run: %d branches, states %v, status running %d suspended %d", len(bs), states, st.Running, st.Suspended)
	}
	if got := len(branchPostmasters(d)); got > scaleCap {
		t.Errorf("%d branch postmasters run at the end, cap %d", got, scaleCap)
	}
	t.Logf("states %v; status: running %d, suspended %d, branch memory %d MB; whole test %s",
		states, st.Running, st.Suspended, st.BranchMemory>>20, time.Since(began).Round(time.Second))
}

// parallel runs fn(0..n-1) on k goroutines.
func parallel(k, n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

func countItems(uri string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var c int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&c); err != nil {
		return err
	}
	if c != 1000 {
		return fmt.Errorf("count %d, want 1000", c)
	}
	return nil
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// scaleDriver is PGTWIN_SCALE_DRIVER, default reflink (XFS loop image):
// btrfs with quotas on slows each snapshot as subvolumes pile up.
func scaleDriver() string {
	if d := os.Getenv("PGTWIN_SCALE_DRIVER"); d != "" {
		return d
	}
	return "reflink"
}
