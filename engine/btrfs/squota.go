package btrfs

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Quota control commands of BTRFS_IOC_QUOTA_CTL (linux/btrfs.h).
const (
	iocQuotaCtl            = 0xC0109428 // _IOWR(0x94, 40, struct btrfs_ioctl_quota_ctl_args)
	quotaCtlEnableSimpleQG = 4          // BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA, Linux 6.7
)

// enableSimpleQuota turns on simple quotas (squota) on the filesystem of
// path. They charge each extent to the subvolume that wrote it, so a
// snapshot costs nothing to account, where qgroups walk back-references and
// make each snapshot slower as subvolumes accumulate. btrfs-progs 6.2 cannot
// enable them, hence the ioctl; it reads and limits them as qgroups.
func enableSimpleQuota(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	args := struct{ cmd, status uint64 }{cmd: quotaCtlEnableSimpleQG}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), iocQuotaCtl, uintptr(unsafe.Pointer(&args))); e != 0 {
		return fmt.Errorf("enable btrfs simple quotas on %s: %w", path, e)
	}
	return nil
}
