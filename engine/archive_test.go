package engine

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// archive runs main's archive_command as postgres would, with %p and %f
// filled in, from the data directory.
func archive(t *testing.T, cmd, pgdata, name string) error {
	t.Helper()
	c := strings.NewReplacer("%p", filepath.Join("pg_wal", name), "%f", name, "%%", "%").Replace(cmd)
	sh := exec.Command("/bin/sh", "-c", c)
	sh.Dir = pgdata
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Logf("archive_command %s: %v: %s", name, err, out)
	}
	return err
}

// TestArchiveCommand: a segment lands whole under its name; archiving it
// again succeeds only when identical (postgres retries after a crash
// between the rename and noting it done); a directory name with a quote,
// a space and a percent sign is no problem; a leftover temporary file of
// a killed copy is overwritten.
func TestArchiveCommand(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "wal archive's 100%")
	pgdata := filepath.Join(root, "pgdata")
	for _, d := range []string{dir, filepath.Join(pgdata, "pg_wal")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cmd := ArchiveSettings(dir)["archive_command"]
	seg := "000000010000000000000003"
	data := bytes.Repeat([]byte("wal!"), 1<<12)
	if err := os.WriteFile(filepath.Join(pgdata, "pg_wal", seg), data, 0o600); err != nil {
		t.Fatal(err)
	}
	// A copy killed half way left this behind.
	if err := os.WriteFile(filepath.Join(dir, "."+seg+".tmp"), data[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := archive(t, cmd, pgdata, seg); err != nil {
		t.Fatalf("archive: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, seg)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("archived segment differs (%d bytes, %v)", len(got), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "."+seg+".tmp")); err == nil {
		t.Fatalf("temporary file left behind")
	}
	if err := archive(t, cmd, pgdata, seg); err != nil {
		t.Fatalf("archiving the same segment again must succeed: %v", err)
	}
	if err := os.WriteFile(filepath.Join(pgdata, "pg_wal", seg), append(data, 'x'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := archive(t, cmd, pgdata, seg); err == nil {
		t.Fatalf("archiving a different segment under an archived name must fail")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, seg)); !bytes.Equal(got, data) {
		t.Fatalf("the archived segment was overwritten")
	}
}

// TestTrimArchive: segments before the one kept from go, history files and
// newer segments stay, and only stale temporary files are removed.
func TestTrimArchive(t *testing.T) {
	dir := t.TempDir()
	files := []string{"000000010000000000000001", "000000010000000000000002", "000000010000000000000003",
		"000000010000000100000000", "00000002.history", ".000000010000000000000004.tmp", ".000000010000000000000001.tmp"}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, ".000000010000000000000001.tmp"), old, old); err != nil {
		t.Fatal(err)
	}
	n, err := TrimArchive(dir, "000000010000000000000003")
	if err != nil || n != 3 {
		t.Fatalf("trim removed %d (%v), want 3", n, err)
	}
	var left []string
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		left = append(left, de.Name())
	}
	want := ".000000010000000000000004.tmp 000000010000000000000003 000000010000000100000000 00000002.history"
	if got := strings.Join(left, " "); got != want {
		t.Fatalf("left %s, want %s", got, want)
	}
	u, err := ArchiveStat(dir)
	if err != nil || u.Segments != 2 || u.Oldest != "000000010000000000000003" {
		t.Fatalf("stat %+v %v", u, err)
	}
}
