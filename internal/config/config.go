package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration file.
type Config struct {
	Daemon    Daemon    `toml:"daemon"`
	Source    Source    `toml:"source"`
	Sync      Sync      `toml:"sync"`
	Engine    Engine    `toml:"engine"`
	Branches  Branches  `toml:"branches"`
	Snapshots Snapshots `toml:"snapshots"`
	Anonymize Anonymize `toml:"anonymize"`
}

// Daemon is the [daemon] section.
type Daemon struct {
	Socket         string `toml:"socket"`
	DataDir        string `toml:"data_dir"`
	AdminGroup     string `toml:"admin_group"`
	SocketGroup    string `toml:"socket_group"`
	LogLevel       string `toml:"log_level"`
	MetricsAddress string `toml:"metrics_address"`
}

// Source is the [source] section: the production database pgtwin copies from.
type Source struct {
	URL          string `toml:"url"`
	PasswordFile string `toml:"password_file"`
}

// Sync is the [sync] section.
type Sync struct {
	Mode           string   `toml:"mode"`
	AllowGroup     string   `toml:"allow_group"`
	Schedule       string   `toml:"schedule"`
	Parallel       int      `toml:"parallel"`
	IncludeSchemas []string `toml:"include_schemas"`
	ExcludeTables  []string `toml:"exclude_tables"`
	// LargeObjects is what a sync does with the source's large objects,
	// which can hold PII no rule sees: "skip" (default), "empty" (same OIDs,
	// no content) or "copy" (unmasked, by explicit choice).
	LargeObjects string `toml:"large_objects"`
	// Publication is logical mode's publication: empty, pgtwin creates and
	// manages "pgtwin"; a name, an existing one used as it is, never altered.
	Publication string `toml:"publication"`
	// Slot is logical mode's replication slot on the source.
	Slot string `toml:"slot"`
	// Subset maps "schema.table" roots to SQL filters; empty copies every
	// row. See subset.go.
	Subset                map[string]string `toml:"subset"`
	SubsetSkipReferencing []string          `toml:"subset_skip_referencing"`
	SubsetForeignKeys     []string          `toml:"subset_foreign_keys"`
	// RetainedWALWarning is how much WAL the logical slot may hold on the
	// source before sync status warns (0: never).
	RetainedWALWarning Size `toml:"retained_wal_warning"`
}

// Engine is the [engine] section.
type Engine struct {
	Driver        string    `toml:"driver"`
	PostgresBin   string    `toml:"postgres_bin"`
	RunAs         string    `toml:"run_as"`
	ListenAddress string    `toml:"listen_address"`
	PortRange     PortRange `toml:"port_range"`
	PoolImageSize Size      `toml:"pool_image_size"`
}

// Branches is the [branches] section.
type Branches struct {
	DefaultTTL  Duration `toml:"default_ttl"`
	IdleSuspend Duration `toml:"idle_suspend"`
	MaxBranches int      `toml:"max_branches"`
	MaxRunning  int      `toml:"max_running"`
	// MaxPerUser is how many branches one non-admin user may hold.
	MaxPerUser int `toml:"max_per_user"`
	// MaxChangedBytes caps the disk one branch may use beyond its snapshot;
	// 0 means no cap.
	MaxChangedBytes Size              `toml:"max_changed_bytes"`
	Settings        map[string]string `toml:"settings"`
}

// Snapshots is the [snapshots] section.
type Snapshots struct {
	Keep int `toml:"keep"`
	// PITRWindow is how long main's WAL is archived in logical mode, so a
	// branch --at any second in it is recovered exactly; 0 turns it off.
	PITRWindow Duration `toml:"pitr_window"`
}

// Anonymize is the [anonymize] section. Columns maps "schema.table.column" to
// a rule table ({ transform = "email", ... }); package anonymize parses the
// rules, because only it knows the transformers and their parameters.
type Anonymize struct {
	KeyFile           string                    `toml:"key_file"`
	OnUnclassifiedPII string                    `toml:"on_unclassified_pii"`
	Columns           map[string]map[string]any `toml:"columns"`
}

// DefaultConfig is what a dev host needs with nothing else said.
func DefaultConfig() Config {
	return Config{
		Daemon: Daemon{
			Socket:     "/run/pgtwin/pgtwin.sock",
			DataDir:    "/var/lib/pgtwin",
			AdminGroup: "pgtwin",
			LogLevel:   "info",
		},
		Sync: Sync{
			Mode:         "dump",
			Schedule:     "0 2 * * *",
			Parallel:     4,
			LargeObjects: "skip",
			Slot:         "pgtwin",
			// Non-nil, so a config that writes the empty value equals the default.
			Subset:                map[string]string{},
			SubsetSkipReferencing: []string{},
			SubsetForeignKeys:     []string{},
			// A slot's WAL fills the production server's disk, not ours:
			// warn early.
			RetainedWALWarning: 1 << 30,
		},
		Engine: Engine{
			Driver:        "auto",
			RunAs:         "pgtwin-pg",
			ListenAddress: "127.0.0.1",
			PortRange:     PortRange{Low: 6500, High: 6999},
		},
		Branches: Branches{
			IdleSuspend: Duration(15 * 60 * 1e9),
			MaxBranches: 500,
			MaxRunning:  50,
			MaxPerUser:  50,
			Settings:    map[string]string{"shared_buffers": "32MB"},
		},
		Snapshots: Snapshots{Keep: 7},
		Anonymize: Anonymize{
			KeyFile:           "/etc/pgtwin/mask.key",
			OnUnclassifiedPII: "fail",
		},
	}
}

// ParseConfig reads TOML over the defaults. Unknown keys are errors: a typo
// in a key must not silently leave a default (say, masking) in place.
func ParseConfig(r io.Reader) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.NewDecoder(r).Decode(&cfg)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return Config{}, fmt.Errorf("line %d: %s", perr.Position.Line, perr.Message)
		}
		return Config{}, err
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		var keys []string
		for _, k := range undecoded {
			// Rule tables under anonymize.columns are free-form here.
			if len(k) > 2 && k[0] == "anonymize" && k[1] == "columns" {
				continue
			}
			keys = append(keys, k.String())
		}
		if len(keys) > 0 {
			sort.Strings(keys)
			return Config{}, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
		}
	}
	return cfg, nil
}

// Load reads and validates the file at path. Errors name the file.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	defer f.Close()
	cfg, err := ParseConfig(f)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}
