package config

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/colkey"
)

// FieldError names the key and the value that is wrong.
type FieldError struct {
	Key    string
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s = %#v: %s", e.Key, e.Value, e.Reason)
}

// userNameRE is what useradd and the passwd file accept as a user name.
var userNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$`)

func bad(key string, value any, reason string) error {
	return &FieldError{Key: key, Value: value, Reason: reason}
}

// Validate checks every value that can be checked without touching the host.
// slotName is what PostgreSQL accepts as a replication slot's name.
var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func (c Config) Validate() error {
	d := c.Daemon
	if d.Socket == "" {
		return bad("daemon.socket", d.Socket, "must be set")
	}
	if !filepath.IsAbs(d.DataDir) {
		return bad("daemon.data_dir", d.DataDir, "must be an absolute path")
	}
	if _, err := zerolog.ParseLevel(d.LogLevel); err != nil || d.LogLevel == "" {
		return bad("daemon.log_level", d.LogLevel, "must be one of trace, debug, info, warn, error")
	}
	if d.MetricsAddress != "" {
		if _, _, err := net.SplitHostPort(d.MetricsAddress); err != nil {
			return bad("daemon.metrics_address", d.MetricsAddress, "must be host:port")
		}
	}

	s := c.Sync
	if s.Mode != "dump" && s.Mode != "logical" {
		return bad("sync.mode", s.Mode, `must be "dump" or "logical"`)
	}
	if s.Parallel < 1 || s.Parallel > 64 {
		return bad("sync.parallel", s.Parallel, "must be between 1 and 64")
	}
	if s.LargeObjects != "skip" && s.LargeObjects != "empty" && s.LargeObjects != "copy" {
		return bad("sync.large_objects", s.LargeObjects, `must be "skip", "empty" or "copy"`)
	}
	if !slotName.MatchString(s.Slot) {
		return bad("sync.slot", s.Slot, "must be 1 to 63 lower-case letters, digits and underscores (a replication slot's name)")
	}
	if s.RetainedWALWarning < 0 {
		return bad("sync.retained_wal_warning", s.RetainedWALWarning, "must not be negative")
	}
	if err := validateSubset(s.Mode, s.Subset, s.SubsetSkipReferencing, s.SubsetForeignKeys); err != nil {
		return err
	}
	for _, t := range s.ExcludeTables {
		if t == "" {
			return bad("sync.exclude_tables", t, "empty table name")
		}
	}

	e := c.Engine
	switch e.Driver {
	case "auto", "btrfs", "reflink", "copy":
	default:
		return bad("engine.driver", e.Driver, "must be auto, btrfs, reflink or copy")
	}
	if e.RunAs == "" {
		return bad("engine.run_as", e.RunAs, "must name a user")
	}
	if len(e.RunAs) > 32 || !userNameRE.MatchString(e.RunAs) {
		return bad("engine.run_as", e.RunAs, "is not a user name (letters, digits, '_', '.', '-', not starting with '-', at most 32)")
	}
	if net.ParseIP(e.ListenAddress) == nil {
		return bad("engine.listen_address", e.ListenAddress, "must be an IP address")
	}
	if e.PortRange.Low < 1024 || e.PortRange.High > 65535 || e.PortRange.Low > e.PortRange.High {
		return bad("engine.port_range", e.PortRange.String(), "must be LOW-HIGH within 1024-65535, LOW <= HIGH")
	}

	b := c.Branches
	if b.DefaultTTL < 0 {
		return bad("branches.default_ttl", b.DefaultTTL.String(), "must not be negative")
	}
	if b.IdleSuspend < 0 {
		return bad("branches.idle_suspend", b.IdleSuspend.String(), "must not be negative")
	}
	if b.MaxBranches < 1 {
		return bad("branches.max_branches", b.MaxBranches, "must be at least 1")
	}
	if b.MaxPerUser < 1 {
		return bad("branches.max_per_user", b.MaxPerUser, "must be at least 1")
	}
	if b.MaxChangedBytes < 0 {
		return bad("branches.max_changed_bytes", b.MaxChangedBytes, "must not be negative")
	}
	if b.MaxRunning < 1 {
		return bad("branches.max_running", b.MaxRunning, "must be at least 1")
	}
	for k := range b.Settings {
		if k == "" || strings.ContainsAny(k, " =\n'\"") {
			return bad("branches.settings", k, "not a PostgreSQL setting name")
		}
		switch k {
		case "port", "listen_addresses", "unix_socket_directories", "data_directory", "hba_file", "ident_file":
			return bad("branches.settings."+k, b.Settings[k], "is managed by pgtwin and cannot be overridden")
		}
	}

	if c.Snapshots.Keep < 1 {
		return bad("snapshots.keep", c.Snapshots.Keep, "must be at least 1")
	}
	if c.Snapshots.PITRWindow < 0 {
		return bad("snapshots.pitr_window", c.Snapshots.PITRWindow.String(), "must not be negative")
	}

	a := c.Anonymize
	if a.KeyFile == "" {
		return bad("anonymize.key_file", a.KeyFile, "must be set")
	}
	switch a.OnUnclassifiedPII {
	case "fail", "null", "mask":
	default:
		return bad("anonymize.on_unclassified_pii", a.OnUnclassifiedPII, "must be fail, null or mask")
	}
	for col, rule := range a.Columns {
		if _, _, _, err := colkey.Parse(col); err != nil {
			return bad("anonymize.columns", col, err.Error())
		}
		if _, ok := rule["transform"].(string); !ok {
			return bad(fmt.Sprintf("anonymize.columns.%q.transform", col), rule["transform"], "must name a transformer")
		}
	}
	return nil
}
