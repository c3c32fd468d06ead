package engine

import (
	"context"
	"fmt"
)

// Limiter is a Driver that can stop one volume from owning more than a
// number of bytes: a write past it fails (ENOSPC or EDQUOT) while the rest of
// the filesystem is untouched. btrfs does, with qgroups.
type Limiter interface {
	// LimitExclusive limits the bytes volume id does not share with any
	// other volume (Usage.ExclusiveBytes); 0 removes the limit.
	LimitExclusive(ctx context.Context, id string, bytes int64) error
}

// LimitVolume limits what volume id may own exclusively (0: no limit). It
// is ErrUnsupported unless the driver is a Limiter (with quotas on). A
// PostgreSQL that hits the limit PANICs on its next WAL write and cannot
// finish crash recovery until it is restarted read-only (SetReadOnly): this
// is a backstop behind a gentler cap, not the cap itself.
func (e *Engine) LimitVolume(ctx context.Context, id string, bytes int64) error {
	if err := e.checkID(id); err != nil {
		return err
	}
	if !exists(e.drv.Path(id)) {
		return fmt.Errorf("limit %s: %w", id, ErrNotFound)
	}
	l, ok := e.drv.(Limiter)
	if !ok {
		return fmt.Errorf("limit %s: the %s driver cannot: %w", id, e.drv.Name(), ErrUnsupported)
	}
	return l.LimitExclusive(ctx, id, bytes)
}
