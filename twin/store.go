package twin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgtwin/pgtwin/internal/durable"
)

// Record states besides the api.State* ones a branch shows.
const (
	stateCreating = "creating"
	stateReady    = "ready"
	stateDeleting = "deleting"
)

// mainRecord is the main twin.
type mainRecord struct {
	State      string `json:"state"` // creating until initialized and running
	Volume     string `json:"volume"`
	Port       int    `json:"port"`
	Database   string `json:"database"`
	Generation int    `json:"generation"`
	// Pending is the volume ReplaceMain is building; a crash leaves it to be
	// removed at start.
	Pending     string `json:"pending,omitempty"`
	PendingPort int    `json:"pending_port,omitempty"`
	// Template is the stopped, empty main ReplaceMain clones; TemplateKey
	// is the PostgreSQL version, database and locale it was made for, and
	// TemplateLocale the locale its database got (the default when the
	// host lacks the one asked for).
	Template       string `json:"template,omitempty"`
	TemplateKey    string `json:"template_key,omitempty"`
	TemplateLocale string `json:"template_locale,omitempty"`
}

// snapshotRecord is one snapshot of main, or of a branch (Origin names it)
// taken to make or reset a branch of that branch.
type snapshotRecord struct {
	ID        string    `json:"id"`
	Volume    string    `json:"volume"`
	Origin    string    `json:"origin"` // MainName or a branch name
	State     string    `json:"state"`  // creating, ready, deleting
	CreatedAt time.Time `json:"created_at"`
	SourceLSN *string   `json:"source_lsn"`
	SizeBytes int64     `json:"size_bytes"`
	// PITR is set on a snapshot of an archiving main: a recovery base.
	PITR *pitrBase `json:"pitr,omitempty"`
}

// branchRecord is one branch. It holds the branch's password: the file is
// mode 0600 in a 0700 directory.
type branchRecord struct {
	ID        string     `json:"id"` // also its volume id and file name
	Name      string     `json:"name"`
	Parent    string     `json:"parent"`
	Snapshot  string     `json:"snapshot"`
	State     string     `json:"state"`
	Owner     string     `json:"owner"`
	OwnerUID  int        `json:"owner_uid"`
	Role      string     `json:"role,omitempty"` // login role; Owner if empty
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Protected bool       `json:"protected"`
	Port      int        `json:"port"`
	Password  string     `json:"password"`
	Database  string     `json:"database"`
	Error     string     `json:"error,omitempty"` // why it is failed, or read-only
	// ReadOnly is set while the branch is over branches.max_changed_bytes
	// (diskcap.go).
	ReadOnly *readOnlyMark `json:"read_only,omitempty"`
	// RenamedFrom is the old name while a rename's other records (children,
	// snapshots) are being pointed at the new one (rename.go).
	RenamedFrom string `json:"renamed_from,omitempty"`
	// At is the time the branch was created or restored --at; nil after a
	// plain create or reset.
	At *time.Time `json:"at,omitempty"`
	// PITR is the recovery that makes the clone exactly At (pitr.go).
	PITR *pitrTarget `json:"pitr,omitempty"`
}

// store writes records with write, fsync, rename, fsync dir: after a crash a
// record is wholly the old or wholly the new one.
type store struct{ dir string }

func openStore(dir string) (*store, error) {
	s := &store{dir: dir}
	for _, d := range []string{dir, s.snapDir(), s.branchDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
	}
	return s, nil
}

func (s *store) snapDir() string   { return filepath.Join(s.dir, "snapshots") }
func (s *store) branchDir() string { return filepath.Join(s.dir, "branches") }
func (s *store) mainPath() string  { return filepath.Join(s.dir, "main.json") }

func (s *store) saveMain(m mainRecord) error {
	return writeRecord(s.mainPath(), m)
}

func (s *store) saveSnapshot(r snapshotRecord) error {
	return writeRecord(filepath.Join(s.snapDir(), r.ID+".json"), r)
}

func (s *store) removeSnapshot(id string) error {
	return removeDurable(filepath.Join(s.snapDir(), id+".json"))
}

func (s *store) saveBranch(r branchRecord) error {
	return writeRecord(filepath.Join(s.branchDir(), r.ID+".json"), r)
}

func (s *store) removeBranch(id string) error {
	return removeDurable(filepath.Join(s.branchDir(), id+".json"))
}

// load reads every record. A missing main.json is (nil, ...).
func (s *store) load() (*mainRecord, []snapshotRecord, []branchRecord, error) {
	var m *mainRecord
	if b, err := os.ReadFile(s.mainPath()); err == nil {
		m = &mainRecord{}
		if err := json.Unmarshal(b, m); err != nil {
			return nil, nil, nil, fmt.Errorf("state %s is corrupt: %w", s.mainPath(), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("state: %w", err)
	}
	snaps, err := readAll[snapshotRecord](s.snapDir())
	if err != nil {
		return nil, nil, nil, err
	}
	branches, err := readAll[branchRecord](s.branchDir())
	if err != nil {
		return nil, nil, nil, err
	}
	return m, snaps, branches, nil
}

func readAll[T any](dir string) ([]T, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var out []T
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		if strings.HasSuffix(de.Name(), ".tmp") {
			// Never renamed into place: the change was not recorded, so it
			// was not acted on either.
			_ = os.Remove(p)
			continue
		}
		if !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("state %s is corrupt (%v); move it away after checking it by hand", p, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func writeRecord(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

func removeDurable(path string) error {
	if err := durable.Remove(path); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

func (r *branchRecord) role() string {
	if r.Role != "" {
		return r.Role
	}
	return r.Owner
}
