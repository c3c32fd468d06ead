// Package tree holds what the directory-based storage drivers (reflink and
// copy) share: validating volume ids, copying a directory tree with its
// metadata through a pluggable per-file copier, and the on-disk layout of a
// root of directory volumes (staging, read-only markers, listing).
//
// It must not know how a file's bytes are copied (the driver passes a
// FileCopier) nor anything about PostgreSQL.
package tree
