// Package copydrv (folder engine/copy; named copydrv so importers keep the
// builtin copy) is the portable storage driver: volumes are plain
// directories, and a snapshot or clone is a full byte copy of the tree made
// with read and write (deliberately not copy_file_range, which would reflink
// on XFS and btrfs and make the cost shown here a lie). Every branch costs
// O(size) time and disk; engine/auto only falls back to it loudly.
//
// Mode, owner, times, symlinks and empty directories are kept, snapshots are
// marked read-only with <root>/.readonly/<id>, and new volumes are built in
// <root>/.staging and renamed into place (engine/internal/tree, shared with
// the reflink driver). The filesystem is synced (syncfs) before the rename,
// so a power loss never leaves a named volume with empty files.
//
// Usage: ExclusiveBytes = TotalBytes, the apparent size of the regular files
// (Method "copy"): nothing is shared.
//
// It must not know about the other drivers or PostgreSQL.
package copydrv
