package api

import "time"

// Branch states.
const (
	StateCreating  = "creating"
	StateReady     = "ready"
	StateSuspended = "suspended"
	StateResetting = "resetting"
	StateDeleting  = "deleting"
	StateFailed    = "failed"
)

// Branch is one branch as the API shows it.
type Branch struct {
	Name          string     `json:"name"`
	Parent        string     `json:"parent"`
	Snapshot      string     `json:"snapshot"`
	State         string     `json:"state"`
	Owner         string     `json:"owner"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     *time.Time `json:"expires_at"`
	Protected     bool       `json:"protected"`
	Port          int        `json:"port"`
	ConnectionURI string     `json:"connection_uri"`
	ChangedBytes  int64      `json:"changed_bytes"`
	// Error says why a branch is failed (reset it or delete it), or why a
	// ready one refuses writes (over branches.max_changed_bytes).
	Error string `json:"error,omitempty"`
	// At is the time a create or restore --at asked for; AtExact says
	// whether the branch was recovered to it (false: Snapshot, the newest
	// not newer than At, stood in).
	At      *time.Time `json:"at,omitempty"`
	AtExact *bool      `json:"at_exact,omitempty"`
}

// Snapshot is one immutable generation of main (or of a branch, when a branch
// of a branch was made).
type Snapshot struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	SourceLSN *string   `json:"source_lsn"`
	SizeBytes int64     `json:"size_bytes"`
	Branches  int       `json:"branches"`
	// PITRBase: branches --at can be recovered from this snapshot with
	// main's archived WAL (snapshots.pitr_window).
	PITRBase bool `json:"pitr_base,omitempty"`
}

// CreateBranchRequest is the body of POST /v1/branches.
type CreateBranchRequest struct {
	Name    string `json:"name"`
	Parent  string `json:"parent,omitempty"`  // "main" (default), a branch name, or a snapshot id
	At      string `json:"at,omitempty"`      // RFC 3339 or relative ("2h")
	TTL     string `json:"ttl,omitempty"`     // Go duration or "7d"; empty: branches.default_ttl
	Protect bool   `json:"protect,omitempty"` // refuse reset and delete until unprotected
	// IfNotExists answers with the caller's branch of that name, unchanged
	// (200 instead of 201), when there is one.
	IfNotExists bool `json:"if_not_exists,omitempty"`
}

// UpdateBranchRequest is the body of PATCH /v1/branches/{name}.
type UpdateBranchRequest struct {
	Protected *bool   `json:"protected,omitempty"`
	TTL       *string `json:"ttl,omitempty"`  // "0" clears the expiry
	Name      *string `json:"name,omitempty"` // rename; same URL after
}

// CreateSnapshotRequest is the body of POST /v1/snapshots.
type CreateSnapshotRequest struct {
	Name string `json:"name,omitempty"`
}

// SyncStopRequest is the body of POST /v1/sync/stop.
type SyncStopRequest struct {
	// DropSlot also drops pgtwin's replication slot and, when pgtwin
	// manages it, its publication on the source.
	DropSlot bool `json:"drop_slot,omitempty"`
}

// SyncRequest is the body of POST /v1/sync.
type SyncRequest struct {
	Resync bool `json:"resync,omitempty"`
}

// Sync modes (sync.mode) and states, as SyncStatus carries them. Dump mode
// is idle, running or failed; logical mode initializing, streaming,
// stopped, failed or needs-resync.
const (
	SyncModeDump    = "dump"
	SyncModeLogical = "logical"

	SyncIdle         = "idle"
	SyncRunning      = "running"
	SyncFailed       = "failed"
	SyncInitializing = "initializing"
	SyncStreaming    = "streaming"
	SyncStopped      = "stopped"
	SyncNeedsResync  = "needs-resync"
)

// SyncStatus is GET /v1/sync.
type SyncStatus struct {
	Mode        string     `json:"mode"`
	State       string     `json:"state"` // one of the Sync* states above
	Step        string     `json:"step,omitempty"`
	StartedAt   *time.Time `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
	LastSuccess *time.Time `json:"last_success"`
	NextRun     *time.Time `json:"next_run"`
	LastError   string     `json:"last_error,omitempty"`
	TablesDone  int        `json:"tables_done"`
	TablesTotal int        `json:"tables_total"`
	Rows        int64      `json:"rows"`
	Bytes       int64      `json:"bytes"`
	RateBytes   float64    `json:"rate_bytes_per_sec"`
	ETASeconds  *float64   `json:"eta_seconds"`
	Snapshot    string     `json:"snapshot,omitempty"` // the snapshot the last successful run produced
	// Logical mode.
	Slot         string   `json:"slot,omitempty"`
	ConfirmedLSN string   `json:"confirmed_lsn,omitempty"`
	LagBytes     *int64   `json:"lag_bytes"`
	LagSeconds   *float64 `json:"lag_seconds"`
	RetainedWAL  *int64   `json:"retained_wal_bytes"`
	SlotHealth   string   `json:"slot_health,omitempty"`
	// Warnings are what makes the twin see less than the selection: e.g.
	// selected tables outside a configured publication.
	Warnings []string `json:"warnings,omitempty"`
}

// Status is GET /v1/status.
type Status struct {
	Version       string      `json:"version"`
	PID           int         `json:"pid"`
	StartedAt     time.Time   `json:"started_at"`
	Driver        string      `json:"driver"`
	DataDir       string      `json:"data_dir"`
	Main          MainStatus  `json:"main"`
	Sync          *SyncStatus `json:"sync"`
	Branches      int         `json:"branches"`
	Running       int         `json:"running"`
	Suspended     int         `json:"suspended"`
	Snapshots     int         `json:"snapshots"`
	BranchMemory  int64       `json:"branch_memory_bytes"`
	CallerUser    string      `json:"caller"`
	CallerIsAdmin bool        `json:"caller_is_admin"`
	// Pool is the filesystem that holds main, snapshots and branches.
	Pool *PoolStatus `json:"pool"`
	// PITR is set when snapshots.pitr_window is on (logical mode).
	PITR *PITRStatus `json:"pitr,omitempty"`
	// Warnings are sentences for whoever runs pgtwin status, e.g. a pool
	// nearly full.
	Warnings []string `json:"warnings"`
}

// PITRStatus is the window of exact --at: main's archived WAL.
type PITRStatus struct {
	Window string `json:"window"`
	// From is the earliest time --at recovers exactly; nil until main has
	// a snapshot taken while it archived.
	From            *time.Time `json:"from"`
	ArchiveSegments int        `json:"archive_segments"`
	ArchiveBytes    int64      `json:"archive_bytes"`
}

// PoolStatus is the space of the filesystem under daemon.data_dir's volumes.
type PoolStatus struct {
	FreeBytes  int64 `json:"free_bytes"`
	TotalBytes int64 `json:"total_bytes"`
}

// MainStatus describes the main twin.
type MainStatus struct {
	State          string `json:"state"`
	Database       string `json:"database"`
	Port           int    `json:"port"`
	LatestSnapshot string `json:"latest_snapshot"`
	SizeBytes      int64  `json:"size_bytes"`
}

// Error is the body of every non-2xx response.
type Error struct {
	Error string `json:"error"`
}
