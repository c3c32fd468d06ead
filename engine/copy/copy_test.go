package copydrv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine/enginetest"
	"github.com/pgtwin/pgtwin/engine/enginetest/drivertest"
)

var open = drivertest.Opener(Open)

// The copy driver runs on the ordinary disk; only the disk-full test needs
// a filesystem of its own.
func TestDriver(t *testing.T) {
	drivertest.Run(t, drivertest.Config{
		Open:     open,
		Root:     func(t *testing.T) string { return t.TempDir() },
		TinyRoot: func(t *testing.T) string { return enginetest.LoopFS(t, "ext4", 256<<20) },
		Fill:     func(t *testing.T, dir string, leave int64) { enginetest.Fill(t, dir, leave) },
		Method:   "copy",
	})
}

func TestOpenRemovesStagingLeftovers(t *testing.T) {
	root := t.TempDir()
	d := open(t, root)
	half := filepath.Join(root, ".staging", "clone.abc", "base")
	if err := os.MkdirAll(half, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, "1"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = d
	// A daemon restart after kill -9 mid-clone: the leftover is removed and
	// reported.
	var logs strings.Builder
	if _, err := Open(context.Background(), root, zerolog.New(&logs)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "clone.abc") || !strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("removing a half-made clone was not reported: %s", logs.String())
	}
	entries, err := os.ReadDir(filepath.Join(root, ".staging"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("staging still holds %v after Open", entries)
	}
}
