package engine_test

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/btrfs"
	copydrv "github.com/pgtwin/pgtwin/engine/copy"
	"github.com/pgtwin/pgtwin/engine/reflink"
)

// openDriver opens a real storage driver by name at root.
func openDriver(ctx context.Context, name, root string) (engine.Driver, error) {
	switch name {
	case "btrfs":
		return btrfs.Open(ctx, root, zerolog.Nop())
	case "reflink":
		return reflink.Open(ctx, root, zerolog.Nop())
	case "copy":
		return copydrv.Open(ctx, root, zerolog.Nop())
	}
	return nil, fmt.Errorf("unknown driver %q", name)
}
