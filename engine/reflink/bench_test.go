package reflink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine/enginetest"
)

// BenchmarkClone clones a data-directory-shaped volume: 1500 small files
// and one 256 MiB relation segment. Its cost should follow the file count,
// not the bytes.
func BenchmarkClone(b *testing.B) {
	for _, fs := range []string{"xfs", "btrfs"} {
		b.Run(fs, func(b *testing.B) {
			ctx := context.Background()
			d, err := Open(ctx, filepath.Join(enginetest.LoopFS(b, fs, 2<<30), "v"), zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Create(ctx, "src"); err != nil {
				b.Fatal(err)
			}
			for i := range 1500 {
				p := filepath.Join(d.Path("src"), "base", fmt.Sprint(i%5), fmt.Sprint(i))
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(p, make([]byte, 8192*(1+i%4)), 0o600); err != nil {
					b.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(d.Path("src"), "base", "16384"), make([]byte, 256<<20), 0o600); err != nil {
				b.Fatal(err)
			}
			if err := d.Snapshot(ctx, "src", "snap"); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := fmt.Sprintf("c%d", i)
				if err := d.Clone(ctx, "snap", id); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := d.Destroy(ctx, id); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
