package btrfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/engine/enginetest"
)

// A fresh filesystem gets simple quotas: a clone's exclusive bytes are what
// it wrote, and a limit on them stops its writes.
func TestSimpleQuotas(t *testing.T) {
	ctx := context.Background()
	d := open(t, filepath.Join(enginetest.LoopFS(t, "btrfs", 0), "v")).(*Driver)
	if !d.quota {
		t.Fatal("quotas are off on a fresh btrfs (kernel without simple quotas, Linux >= 6.7?)")
	}
	if err := d.Create(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Path("a"), "f"), make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Clone(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Path("b"), "g"), randomBytes(3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := d.Usage(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if u.Method != "qgroup" || u.ExclusiveBytes < 3<<20 || u.ExclusiveBytes > 4<<20 {
		t.Fatalf("clone's usage after writing 3 MiB = %+v, want qgroup and about 3 MiB", u)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7919 + i>>8)
	}
	return b
}

// TestBenchCloneAtScale clones one volume PGTWIN_BENCH_CLONES times (default
// 1000) on simple quotas and then on qgroups, and compares the first clones'
// time with the last ones'.
func TestBenchCloneAtScale(t *testing.T) {
	if os.Getenv("PGTWIN_BENCH") != "1" {
		t.Skip("benchmark: set PGTWIN_BENCH=1")
	}
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("PGTWIN_BENCH_CLONES")); err == nil && v > 0 {
		n = v
	}
	for _, mode := range []string{"squota", "qgroup"} {
		ctx := context.Background()
		mnt := enginetest.LoopFS(t, "btrfs", 8<<30)
		if mode == "qgroup" {
			if _, _, err := run(ctx, "quota", "enable", mnt); err != nil {
				t.Fatal(err)
			}
		}
		d := open(t, filepath.Join(mnt, "v")).(*Driver)
		if err := d.Create(ctx, "base"); err != nil {
			t.Fatal(err)
		}
		// A PostgreSQL data directory's worth of files: ~1000 files, 40 MB.
		for i := range 1000 {
			dir := filepath.Join(d.Path("base"), strconv.Itoa(i%20))
			os.MkdirAll(dir, 0o700)
			if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), randomBytes(40<<10), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var took []time.Duration
		for i := range n {
			begin := time.Now()
			if err := d.Clone(ctx, "base", fmt.Sprintf("c%d", i)); err != nil {
				t.Fatal(err)
			}
			// A branch writes a little after its clone, as a started
			// instance does.
			if err := os.WriteFile(filepath.Join(d.Path(fmt.Sprintf("c%d", i)), "w"), randomBytes(64<<10), 0o600); err != nil {
				t.Fatal(err)
			}
			took = append(took, time.Since(begin))
		}
		k := min(10, n)
		fmt.Printf("%s: %d clones; clone 1: %v; median of clones 1-%d: %v; clone %d: %v; median of the last %d: %v\n",
			mode, n, took[0].Round(100*time.Microsecond), k, med(took[:k]), n, took[n-1].Round(100*time.Microsecond), k, med(took[n-k:]))
		if _, err := d.Usage(ctx, fmt.Sprintf("c%d", n-1)); err != nil {
			t.Fatal(err)
		}
	}
}

func med(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(100 * time.Microsecond)
}
