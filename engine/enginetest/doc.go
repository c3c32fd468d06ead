// Package enginetest helps engine tests get real filesystems: loop-mounted
// btrfs, XFS (with reflink) or ext4 images in a test's temp dir, unmounted and
// removed when the test ends, and a way to fill one up for disk-full tests.
//
// Tests run as root on hosts with loop devices; when something is missing
// (root, mkfs.X, a loop device) the test fails saying what, it never skips.
// It must not know about drivers or PostgreSQL.
package enginetest
