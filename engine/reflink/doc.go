// Package reflink is the storage driver for filesystems with FICLONE (XFS
// with reflink=1, btrfs): volumes are plain directories under a root, and a
// snapshot or clone copies the tree file by file, each file cloned with the
// FICLONE ioctl so it shares every extent with its source until written.
// Cost is O(files), not O(bytes). Mode, owner, times, symlinks and empty
// directories are kept (engine/internal/tree).
//
// Copying file by file is not atomic: the engine must clone from a stopped or
// read-only source, or bracket a live copy with pg_backup_start and
// pg_backup_stop. CloneTree copies an arbitrary directory the same way; the
// engine uses it to bring pg_wal of a snapshot up to date after
// pg_backup_stop.
//
// Read-only snapshots: the driver records a snapshot with a marker file
// <root>/.readonly/<id> (ReadOnly reports it) rather than with permission
// bits, which root ignores and which the clone must keep as they were. The
// driver never writes into a volume after making it: Create, Clone and
// Snapshot refuse an existing id, and only Destroy removes one. A new volume
// is built under <root>/.staging and renamed into place, so after a crash an
// id exists complete or not at all; Open clears staging leftovers and logs
// them. No fsync or syncfs is needed for that: FICLONE writes back the source
// range first and a clone is pure metadata, which XFS and btrfs journal in
// order, so the rename cannot be on disk before the files it names.
//
// Usage: TotalBytes is the apparent size of the regular files;
// ExclusiveBytes ("fiemap") sums the extents that FS_IOC_FIEMAP (with
// FIEMAP_FLAG_SYNC, so dirty data is placed first) reports without
// FIEMAP_EXTENT_SHARED. It is exact at extent granularity for data shared
// with any other file on the filesystem; it costs one ioctl per file per
// few hundred extents, and the SYNC flag writes back the volume's dirty data.
// An extent shared with a file outside the volume family (e.g. reflinked by
// hand) also counts as shared.
//
// Open fails with engine.ErrUnsupported if a FICLONE probe in the root fails.
// It must not know about the other drivers or PostgreSQL.
package reflink
