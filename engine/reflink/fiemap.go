package reflink

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FS_IOC_FIEMAP and its structures (linux/fiemap.h); x/sys/unix has none.
const (
	fsIocFiemap        = 0xC020660B // _IOWR('f', 11, struct fiemap)
	fiemapFlagSync     = 0x1
	fiemapExtentLast   = 0x1
	fiemapExtentShared = 0x2000
	fiemapBatch        = 256
)

type fiemapExtent struct {
	Logical    uint64
	Physical   uint64
	Length     uint64
	reserved64 [2]uint64
	Flags      uint32
	reserved   [3]uint32
}

type fiemap struct {
	Start         uint64
	Length        uint64
	Flags         uint32
	MappedExtents uint32
	ExtentCount   uint32
	reserved      uint32
	Extents       [fiemapBatch]fiemapExtent
}

// exclusiveBytes sums the extents of the file at path that are not shared
// with any other file.
func exclusiveBytes(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var (
		m     fiemap
		start uint64
		excl  int64
	)
	for {
		m = fiemap{Start: start, Length: ^uint64(0), Flags: fiemapFlagSync, ExtentCount: fiemapBatch}
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&m)))
		if errno != 0 {
			return 0, &os.PathError{Op: "fiemap", Path: path, Err: errno}
		}
		if m.MappedExtents == 0 {
			return excl, nil
		}
		for _, e := range m.Extents[:m.MappedExtents] {
			if e.Flags&fiemapExtentShared == 0 {
				excl += int64(e.Length)
			}
			if e.Flags&fiemapExtentLast != 0 {
				return excl, nil
			}
		}
		last := m.Extents[m.MappedExtents-1]
		start = last.Logical + last.Length
	}
}
