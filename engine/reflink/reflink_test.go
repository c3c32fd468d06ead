package reflink

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

func suite(fstype string, tiny int64) drivertest.Config {
	c := drivertest.LoopConfig(fstype, tiny)
	c.Open = open
	c.CopyOnWrite = true
	c.Method = "fiemap"
	return c
}

func TestDriverXFS(t *testing.T)   { drivertest.Run(t, suite("xfs", 0)) }
func TestDriverBtrfs(t *testing.T) { drivertest.Run(t, suite("btrfs", 256<<20)) }

func TestOpenRefusesExt4(t *testing.T) {
	mnt := enginetest.LoopFS(t, "ext4", 64<<20)
	root := filepath.Join(mnt, "volumes")
	_, err := Open(context.Background(), root, zerolog.Nop())
	if !errors.Is(err, engine.ErrUnsupported) {
		t.Fatalf("Open on ext4: %v, want ErrUnsupported", err)
	}
	t.Log(err)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("a failed probe left %v in the root", entries)
	}
}

func TestSnapshotIsMarkedReadOnly(t *testing.T) {
	ctx := context.Background()
	d := open(t, filepath.Join(enginetest.LoopFS(t, "xfs", 0), "v")).(*Driver)
	if err := d.Create(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Snapshot(ctx, "a", "s"); err != nil {
		t.Fatal(err)
	}
	if err := d.Clone(ctx, "s", "c"); err != nil {
		t.Fatal(err)
	}
	if d.ReadOnly("a") || !d.ReadOnly("s") || d.ReadOnly("c") {
		t.Fatalf("ReadOnly a=%v s=%v c=%v, want false true false", d.ReadOnly("a"), d.ReadOnly("s"), d.ReadOnly("c"))
	}
	// Destroying the snapshot drops the mark; the id can be reused writable.
	if err := d.Destroy(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := d.Clone(ctx, "a", "s"); err != nil {
		t.Fatal(err)
	}
	if d.ReadOnly("s") {
		t.Fatal("a clone made under a destroyed snapshot's id is read-only")
	}
	// Marker files are not volumes.
	ids, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 {
		t.Fatalf("List = %v, want a c s", ids)
	}
}
