// Package durable writes and removes files so that a crash (kill -9, power
// loss) leaves either the old state or the new one, never a torn file or a
// change the directory has not recorded. Every component that records state
// before acting on it goes through here.
//
// It is a leaf: it knows files and directories, nothing of pgtwin.
package durable

import (
	"errors"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data: write a temporary file beside it, fsync
// it, rename it over path, fsync the directory.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Remove deletes path (a missing file is fine) and fsyncs its directory.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, making renames and removals in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
