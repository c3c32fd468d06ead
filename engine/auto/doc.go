// Package auto opens the storage driver that engine.driver names, and for
// "auto" picks the best one the volumes directory's filesystem supports:
// btrfs (statfs magic), else reflink (a FICLONE probe), else, when
// engine.pool_image_size is set and the daemon runs as root, a btrfs pool:
// a sparse image file formatted btrfs and loop-mounted on the volumes
// directory; else copy, with a warning naming its O(size) cost.
//
// The pool is created once and mounted again by every later Open (an image
// that exists is never reformatted; a pool already mounted is reused). The
// daemon leaves it mounted at shutdown; Unmount is for tests and tools.
//
// It knows the drivers and how to choose between them; it must not know
// about instances, branches or PostgreSQL.
package auto
