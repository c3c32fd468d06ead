package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgtwin/pgtwin/internal/durable"
)

// entry is the intent to make (or destroy) volume ID, recorded durably before
// the first change on disk and removed after the last. An entry found at
// start-up names a volume that may be half-made.
type entry struct {
	Op      string    `json:"op"` // "init", "clone", "snapshot", "destroy"; "settle" for a snapshot's temporary volume
	ID      string    `json:"id"`
	Src     string    `json:"src,omitempty"`
	Started time.Time `json:"started"`
}

func (e *Engine) journalPath(id string) string { return filepath.Join(e.jrnlDir, id+".json") }

// record writes the entry with write, fsync, rename, fsync dir, so after a
// crash it is either wholly there or not at all.
func (e *Engine) record(en entry) error {
	b, err := json.Marshal(en)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(e.journalPath(en.ID), b, 0o600); err != nil {
		return noSpace(fmt.Errorf("journal %s %s: %w", en.Op, en.ID, err))
	}
	return nil
}

func (e *Engine) forget(id string) error {
	if err := durable.Remove(e.journalPath(id)); err != nil {
		return fmt.Errorf("journal %s: %w", id, err)
	}
	return nil
}

func (e *Engine) journal() ([]entry, error) {
	des, err := os.ReadDir(e.jrnlDir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var out []entry
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, ".tmp") {
			// A write that never got renamed: the intent was not recorded,
			// so nothing was done either.
			_ = os.Remove(filepath.Join(e.jrnlDir, name))
			continue
		}
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(e.jrnlDir, name))
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		var en entry
		if err := json.Unmarshal(b, &en); err != nil || en.ID != strings.TrimSuffix(name, ".json") {
			return nil, fmt.Errorf("journal: %s is corrupt; remove it after checking volume %s by hand", name, strings.TrimSuffix(name, ".json"))
		}
		out = append(out, en)
	}
	return out, nil
}
