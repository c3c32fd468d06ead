// Package enginetest helps engine tests get real filesystems: loop-mounted
// btrfs, XFS (with reflink) or ext4 images in a test's temp dir, unmounted and
// removed when the test ends (LoopFS), and full ones for disk-full tests
// (FullFS, or Fill and FillMetadata on any mount).
//
// Tests run as root on hosts with loop devices; when something is missing
// (root, mkfs.X, a loop device) the test fails saying what, it never skips.
// It must not import package engine (engine's own in-package tests use it, and
// that would be an import cycle) nor know about drivers or PostgreSQL; the
// driver conformance suite lives in the drivertest subpackage for that reason.
package enginetest
