package engine

import (
	"context"
	"errors"
)

// Driver stores volumes on a filesystem and copies them copy-on-write when the
// filesystem allows. A volume is a directory named by an id under the driver's
// root; a snapshot is a volume that must never change again.
//
// Implementations live in subpackages (btrfs, reflink, copy) and never know of
// each other. Ids are plain names ([A-Za-z0-9._-]); the engine chooses them.
type Driver interface {
	// Name is "btrfs", "reflink" or "copy".
	Name() string
	// Path is where volume id lives (whether or not it exists).
	Path(id string) string
	// Create makes an empty writable volume.
	Create(ctx context.Context, id string) error
	// Snapshot makes a read-only point-in-time copy of volume src as id.
	Snapshot(ctx context.Context, src, id string) error
	// Clone makes a writable volume id from snapshot (or volume) src.
	Clone(ctx context.Context, src, id string) error
	// Destroy removes volume or snapshot id. Removing a missing id is ErrNotFound.
	Destroy(ctx context.Context, id string) error
	// Usage reports the bytes of volume id and how many are its own.
	Usage(ctx context.Context, id string) (Usage, error)
}

// AtomicSnapshotter is a Driver whose Snapshot of a live directory is
// crash-consistent (all files captured at one instant), like btrfs. Without
// it, the engine brackets a copy of a running instance with pg_backup_start
// and pg_backup_stop.
type AtomicSnapshotter interface {
	AtomicSnapshot() bool
}

// Lister is a Driver that can enumerate its volumes.
type Lister interface {
	List(ctx context.Context) ([]string, error)
}

// Usage is disk usage of one volume.
type Usage struct {
	// TotalBytes is the apparent size of all files in the volume.
	TotalBytes int64 `json:"total_bytes"`
	// ExclusiveBytes is what the volume does not share with any other volume:
	// the disk a clone costs. Equal to TotalBytes for the copy driver.
	ExclusiveBytes int64 `json:"exclusive_bytes"`
	// Method says how ExclusiveBytes was measured (e.g. "qgroup", "fiemap").
	Method string `json:"method"`
}

// Sentinel errors. Drivers and the engine wrap these so callers can test with
// errors.Is and show a clear message.
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrNoSpace      = errors.New("no space left on the data directory's filesystem")
	ErrNoFreePort   = errors.New("no free port in engine.port_range")
	ErrNoPostgres   = errors.New("postgres binaries not found")
	ErrUnsupported  = errors.New("not supported by this filesystem")
	ErrInvalidID    = errors.New("invalid volume id")
	ErrNotRunning   = errors.New("instance is not running")
	ErrStartTimeout = errors.New("instance did not become ready in time")
)

// TreeCloner is a Driver that can copy one directory tree into another on its
// filesystem (copy-on-write where it can). The engine uses it to copy pg_wal
// again after pg_backup_stop, so a snapshot holds all the WAL it needs.
type TreeCloner interface {
	CloneTree(ctx context.Context, srcDir, dstDir string) error
}
