package tree

import (
	"fmt"

	"github.com/pgtwin/pgtwin/engine"
)

// maxIDLen keeps ids well under NAME_MAX once staging suffixes are added.
const maxIDLen = 200

// ValidID checks a volume id: letters, digits, '.', '_' and '-', not
// starting with '.', so an id is always one plain path element and names
// beginning with '.' stay free for the drivers' own bookkeeping.
func ValidID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", engine.ErrInvalidID)
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("%w %q: longer than %d bytes", engine.ErrInvalidID, id, maxIDLen)
	}
	if id[0] == '.' {
		return fmt.Errorf("%w %q: must not start with '.'", engine.ErrInvalidID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w %q: only letters, digits, '.', '_' and '-' are allowed", engine.ErrInvalidID, id)
		}
	}
	return nil
}
