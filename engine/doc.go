// Package engine turns PostgreSQL data directories into running instances and
// makes copy-on-write copies of them: volumes, read-only snapshots of volumes,
// and writable clones of snapshots, each on a storage Driver.
//
// It owns the Postgres binaries and processes (initdb, start, stop, readiness,
// adoption after a daemon restart), port allocation, and the journal that lets
// a half-made clone be found and removed after a crash.
//
// It must not know about syncing, masking or branch policy: it deals in volume
// ids and instances, never in branch names, owners or snapshots' meaning.
package engine
