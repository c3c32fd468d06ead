// Package btrfs is the storage driver for btrfs: every volume is a subvolume
// directly under the root directory, a snapshot is a read-only subvolume
// snapshot (btrfs subvolume snapshot -r) and a clone a writable one. Both are
// O(1) and atomic, so a snapshot of a running PostgreSQL is crash-consistent
// (the driver is an engine.AtomicSnapshotter).
//
// It drives the btrfs command (btrfs-progs) by argv; a failing command's
// stderr is part of the returned error.
//
// Usage: ExclusiveBytes comes from quota groups ("qgroup"): Open enables quotas
// on the filesystem once, simple quotas (squota, Linux >= 6.7, by ioctl)
// where the kernel has them, which charge each extent to the subvolume that
// wrote it, so a clone's exclusive bytes are what it changed and snapshots
// stay O(1) however many subvolumes there are; else full qgroups (btrfs
// quota enable, then waits for the first rescan), whose back-reference
// accounting makes each snapshot slower as subvolumes accumulate. A
// filesystem that has quotas keeps the kind it has. Usage reads the volume's
// level-0 qgroup with
// `btrfs qgroup show --raw --sync -f`, which commits the running transaction
// first so recent writes count. Reading it is cheap (one ioctl walk of the
// quota tree, independent of the volume's size) and it is exact at extent
// granularity, including the volume's own metadata (about 16 KiB for a fresh
// snapshot). When quotas cannot be enabled (not root) or the kernel reports
// the qgroup data inconsistent (e.g. after deleting a large snapshot) or a
// rescan running, Usage falls back to `btrfs filesystem du -s --raw`
// ("du": FIEMAP shared flags per file, O(extents)) and starts a rescan in the
// background. TotalBytes is always the apparent size of the volume's regular
// files (a walk with lstat).
//
// It must not know about the other drivers or PostgreSQL.
package btrfs
