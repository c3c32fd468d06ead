package twin

import (
	"context"
	"fmt"
	"testing"

	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/twin/api"
)

// BenchmarkCreate and BenchmarkReset time a branch create and a reset on
// btrfs with a small main, from the call until the branch accepts
// connections. Run with -benchtime=10x.
func BenchmarkCreate(b *testing.B) {
	f := newFx(b, "btrfs", func(c *config.Config) { c.Branches.MaxBranches = 0 })
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.tw.CreateBranch(ctx, alice, api.CreateBranchRequest{Name: fmt.Sprintf("bench-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

func BenchmarkReset(b *testing.B) {
	f := newFx(b, "btrfs", nil)
	ctx := context.Background()
	f.create(alice, api.CreateBranchRequest{Name: "bench"})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.tw.ResetBranch(ctx, alice, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}
