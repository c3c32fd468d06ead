package engine_test

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/internal/tree"
)

// openDriver opens a real storage driver by name at root.
func openDriver(ctx context.Context, name, root string) (engine.Driver, error) {
	switch name {
	case "copy":
		s, err := tree.OpenStore(root)
		if err != nil {
			return nil, err
		}
		return tmpCopy{s}, nil
	}
	return nil, fmt.Errorf("driver %q not available", name)
}

// tmpCopy stands in for engine/copy until it lands.
type tmpCopy struct{ *tree.Store }

func (tmpCopy) Name() string { return "copy" }
func (d tmpCopy) Snapshot(ctx context.Context, src, id string) error {
	return d.Make(ctx, src, id, true, plain)
}
func (d tmpCopy) Clone(ctx context.Context, src, id string) error {
	return d.Make(ctx, src, id, false, plain)
}
func (d tmpCopy) Usage(ctx context.Context, id string) (engine.Usage, error) {
	n, err := tree.ApparentSize(ctx, d.Path(id))
	return engine.Usage{TotalBytes: n, ExclusiveBytes: n, Method: "size"}, err
}
func plain(dst, src *os.File) error { _, err := io.Copy(dst, src); return err }
