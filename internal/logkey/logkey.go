// Package logkey holds the structured-log field names used across pgtwin, so
// every component spells them the same way and log queries stay stable.
//
// It must not know anything else: it is a leaf imported by every package.
package logkey

// Field names for zerolog events. Values logged under these keys must never be
// row data from the source: masking happens before logging is possible.
const (
	Component = "component"
	Branch    = "branch"
	Snapshot  = "snapshot"
	Volume    = "volume"
	Table     = "table"
	Column    = "column"
	Driver    = "driver"
	// Filesystem is the type of a filesystem (btrfs, xfs, ext4, ...).
	Filesystem = "filesystem"
	Port       = "port"
	PID        = "pid"
	// GOMAXPROCS is the daemon's Go scheduler width (see proxy.SpareP).
	GOMAXPROCS = "gomaxprocs"
	Path       = "path"
	Step       = "step"
	Owner      = "owner"
	Duration   = "duration"
	LSN        = "lsn"
	Rows       = "rows"
	Bytes      = "bytes"
	Request    = "request"
	Status     = "status"
	UID        = "uid"
	// Addr is a listen address (host:port).
	Addr = "addr"
	// Reason says why something was done (e.g. why a branch was suspended).
	Reason = "reason"
	// Limit is a configured cap (e.g. branches.max_changed_bytes).
	Limit = "limit"
	// Slot is a replication slot's name on the source.
	Slot = "slot"
	// Attempt counts tries of something retried.
	Attempt = "attempt"
	// Part numbers one range of a table copied in ranges, from 1; Parts
	// is how many it has.
	Part  = "part"
	Parts = "parts"
	// Trigger says what started a sync run (schedule, missed, request).
	Trigger = "trigger"
	// SourceVersion is the source's server_version_num.
	SourceVersion = "source_version"
	// TargetVersion is the twin's server_version_num.
	TargetVersion = "target_version"
	// Binary says a COPY went in binary format (or, for a sync, may).
	Binary = "binary"
	// ProtoVersion is the pgoutput proto_version asked for.
	ProtoVersion = "proto_version"
	// Tables counts tables (of a copy, a subset).
	Tables = "tables"
	// Columns lists column names (never their values).
	Columns = "columns"
	// Role is a database role's name.
	Role = "role"
	// Extension is a PostgreSQL extension's name.
	Extension = "extension"
	// Object names a database object pgtwin left out or changed (an event
	// trigger, a default ACL entry).
	Object = "object"
	// Mode is a configured mode (sync.mode, sync.large_objects).
	Mode = "mode"
	// Change says what a schema change was.
	Change = "change"
	// Locale is a database's locale as the source has it (provider,
	// collation, ctype); LocaleUsed the one the twin's database got.
	Locale     = "locale"
	LocaleUsed = "locale_used"
)
