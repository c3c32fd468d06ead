package btrfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/enginetest"
	"github.com/pgtwin/pgtwin/engine/enginetest/drivertest"
)

var open = drivertest.Opener(Open)

func TestDriver(t *testing.T) {
	c := drivertest.LoopConfig("btrfs", 128<<20)
	c.Open = open
	c.CopyOnWrite = true
	c.CloneFitsWhenFull = true
	c.Method = "qgroup"
	drivertest.Run(t, c)
}

func TestOpenRefusesOtherFilesystems(t *testing.T) {
	root := filepath.Join(enginetest.LoopFS(t, "xfs", 0), "volumes")
	_, err := Open(context.Background(), root, zerolog.Nop())
	if !errors.Is(err, engine.ErrUnsupported) {
		t.Fatalf("Open on xfs: %v, want ErrUnsupported", err)
	}
	t.Log(err)
}

func TestAtomicSnapshotter(t *testing.T) {
	d := open(t, filepath.Join(enginetest.LoopFS(t, "btrfs", 0), "v"))
	var a engine.AtomicSnapshotter = d.(*Driver)
	if !a.AtomicSnapshot() {
		t.Fatal("btrfs snapshots must be atomic")
	}
}

// Usage falls back to btrfs filesystem du when qgroups are unusable.
func TestUsageWithoutQuota(t *testing.T) {
	ctx := context.Background()
	d := open(t, filepath.Join(enginetest.LoopFS(t, "btrfs", 0), "v")).(*Driver)
	d.quota = false
	if err := d.Create(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Clone(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	u, err := d.Usage(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if u.Method != "du" || u.ExclusiveBytes != 0 {
		t.Fatalf("usage without quota = %+v, want method du and 0 exclusive", u)
	}
}

// When the kernel marks qgroup data inconsistent, Usage answers from
// btrfs filesystem du and starts a rescan; once it is done, qgroups again.
func TestUsageWhenQgroupsInconsistent(t *testing.T) {
	ctx := context.Background()
	// Simple quotas are never inconsistent: make a filesystem with qgroups.
	mnt := enginetest.LoopFS(t, "btrfs", 0)
	if _, _, err := run(ctx, "quota", "enable", mnt); err != nil {
		t.Fatal(err)
	}
	d := open(t, filepath.Join(mnt, "v")).(*Driver)
	if err := d.Create(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Path("a"), "f"), make([]byte, 5<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Clone(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	// Assigning a qgroup with shared extents to a parent without a rescan
	// is a documented way to make the accounting inconsistent.
	if _, _, err := run(ctx, "qgroup", "create", "1/0", d.root); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(ctx, "qgroup", "assign", "--no-rescan", "0/256", "1/0", d.root); err != nil {
		t.Fatal(err)
	}
	u, err := d.Usage(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if u.Method != "du" || u.ExclusiveBytes != 0 || u.TotalBytes != 5<<20 {
		t.Fatalf("usage with inconsistent qgroups = %+v, want du, 0 exclusive, 5 MiB total", u)
	}
	if _, _, err := run(ctx, "quota", "rescan", "-W", d.root); err != nil {
		t.Fatal(err)
	}
	if u, err := d.Usage(ctx, "b"); err != nil || u.Method != "qgroup" {
		t.Fatalf("usage after the rescan = %+v, %v; want method qgroup", u, err)
	}
}
