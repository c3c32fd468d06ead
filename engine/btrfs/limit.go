package btrfs

import (
	"context"
	"fmt"
	"strconv"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/internal/tree"
)

var _ engine.Limiter = (*Driver)(nil)

// LimitExclusive implements engine.Limiter with a limit on the exclusive
// bytes of id's level-0 qgroup (what Usage reports as ExclusiveBytes). A
// write past it fails with EDQUOT.
func (d *Driver) LimitExclusive(ctx context.Context, id string, bytes int64) error {
	if err := tree.ValidID(id); err != nil {
		return fmt.Errorf("limit: %w", err)
	}
	if !d.quota {
		return fmt.Errorf("limit %s: btrfs quotas are off: %w", id, engine.ErrUnsupported)
	}
	arg := "none"
	if bytes > 0 {
		arg = strconv.FormatInt(bytes, 10)
	}
	if _, _, err := run(ctx, "qgroup", "limit", "-e", arg, d.Path(id)); err != nil {
		return fmt.Errorf("limit %s: %w", id, err)
	}
	return nil
}
