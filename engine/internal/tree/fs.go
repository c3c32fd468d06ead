package tree

import (
	"fmt"

	"golang.org/x/sys/unix"
)

var fsNames = map[int64]string{
	unix.BTRFS_SUPER_MAGIC:     "btrfs",
	unix.XFS_SUPER_MAGIC:       "xfs",
	unix.EXT4_SUPER_MAGIC:      "ext4", // also ext2 and ext3
	unix.TMPFS_MAGIC:           "tmpfs",
	unix.OVERLAYFS_SUPER_MAGIC: "overlayfs",
	unix.NFS_SUPER_MAGIC:       "nfs",
	0x2fc12fc1:                 "zfs",
	unix.F2FS_SUPER_MAGIC:      "f2fs",
	unix.FUSE_SUPER_MAGIC:      "fuse",
}

// FSType names the filesystem holding path, and returns its statfs magic.
func FSType(path string) (string, int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	magic := int64(st.Type)
	if name, ok := fsNames[magic]; ok {
		return name, magic, nil
	}
	return fmt.Sprintf("filesystem type %#x", magic), magic, nil
}
