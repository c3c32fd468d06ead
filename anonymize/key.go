package anonymize

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// KeySize is the size of the masking key in bytes.
const KeySize = 32

// LoadOrCreateKey reads the masking key from path, creating it with KeySize
// random bytes (mode 0600, parent directory 0700) when it does not exist yet.
// The key itself is never logged.
func LoadOrCreateKey(path string, log zerolog.Logger) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) < 16 {
			return nil, fmt.Errorf("masking key %s: %d bytes, need at least 16", path, len(key))
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read masking key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create masking key dir: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate masking key: %w", err)
	}
	// O_EXCL: if another process created it meanwhile, use theirs rather than
	// silently replacing a key that may already have masked data.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKey(path, log)
	}
	if err != nil {
		return nil, fmt.Errorf("create masking key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write masking key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("sync masking key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close masking key: %w", err)
	}
	log.Info().Str(logkey.Path, path).Msg("created masking key")
	return key, nil
}
