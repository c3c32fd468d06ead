package tree

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pgtwin/pgtwin/engine"
)

func plainCopy(dst, src *os.File) error {
	_, err := io.Copy(struct{ io.Writer }{dst}, struct{ io.Reader }{src})
	return err
}

func TestValidID(t *testing.T) {
	for _, ok := range []string{"main", "snap-2026-11-21T05.00", "b_1", "A9", "x..y"} {
		if err := ValidID(ok); err != nil {
			t.Errorf("ValidID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", ".staging", "a/b", "a b", "é", strings.Repeat("x", 201), "a\nb"} {
		if err := ValidID(bad); !errors.Is(err, engine.ErrInvalidID) {
			t.Errorf("ValidID(%q) = %v, want ErrInvalidID", bad, err)
		}
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A live data directory drops files while it is copied; the copy skips them.
func TestCopySkipsVanishedFilesAndSockets(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "dst")
	for _, n := range []string{"a", "b", "c", "d"} {
		write(t, filepath.Join(src, "pg_wal", n), n)
	}
	l, err := net.Listen("unix", filepath.Join(src, ".s.PGSQL.5432"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var calls atomic.Int32
	vanishing := func(d, s *os.File) error {
		if calls.Add(1) == 1 {
			// Remove every other WAL file before it is reached; whichever
			// one is being copied now stays open and copies fine.
			for _, n := range []string{"a", "b", "c", "d"} {
				if p := filepath.Join(src, "pg_wal", n); p != s.Name() {
					os.Remove(p)
				}
			}
		}
		return plainCopy(d, s)
	}
	if err := Copy(context.Background(), src, dst, vanishing); err != nil {
		t.Fatalf("copy of a shrinking tree: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dst, ".s.PGSQL.5432")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket copied: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(dst, "pg_wal"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 1 || len(entries) > 4 {
		t.Errorf("copied %d WAL files", len(entries))
	}
}

func TestCopyRefusesFileOverDirectory(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, filepath.Join(src, "x"), "file")
	write(t, filepath.Join(dst, "x", "inside"), "keep")
	err := Copy(context.Background(), src, dst, plainCopy)
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("copy of a file over a directory: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "x", "inside")); string(b) != "keep" {
		t.Fatal("the destination directory was touched")
	}
}

func TestCopyStopsWhenCancelled(t *testing.T) {
	src := t.TempDir()
	for i := range 50 {
		write(t, filepath.Join(src, "d", string(rune('a'+i%26))+string(rune('a'+i/26))), "x")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	err := Copy(ctx, src, filepath.Join(t.TempDir(), "dst"), func(d, s *os.File) error {
		if n.Add(1) == 3 {
			cancel()
		}
		return plainCopy(d, s)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v", err)
	}
	if n.Load() >= 50 {
		t.Fatalf("cancelled copy still copied all %d files", n.Load())
	}
}

func TestStoreMakeFailureLeavesNothing(t *testing.T) {
	root := t.TempDir()
	s, _, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Create(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		write(t, filepath.Join(s.Path("v"), "f", string(rune('a'+i))), "x")
	}
	boom := errors.New("boom")
	var n atomic.Int32
	err = s.Make(ctx, "v", "c", true, func(d, src *os.File) error {
		if n.Add(1) == 10 {
			return boom
		}
		return plainCopy(d, src)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Make = %v, want the copier's error", err)
	}
	if _, err := os.Lstat(s.Path("c")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed Make left %s: %v", s.Path("c"), err)
	}
	if s.ReadOnly("c") {
		t.Error("failed snapshot left its read-only marker")
	}
	if e, _ := os.ReadDir(s.Staging()); len(e) != 0 {
		t.Errorf("failed Make left staging entries %v", e)
	}
}
