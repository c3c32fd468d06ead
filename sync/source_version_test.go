package twinsync

import (
	"context"
	"strings"
	"testing"
)

// TestCheckDumpVersionRefusesOldSources: a source older than 12 is refused
// with one sentence before anything is copied; 12 passes.
func TestCheckDumpVersionRefusesOldSources(t *testing.T) {
	bin, err := findBinDir()
	if err != nil {
		t.Fatal(err)
	}
	for num, want := range map[int]string{110022: "PostgreSQL 11,", 90624: "PostgreSQL 9.6,"} {
		err := checkDumpVersion(context.Background(), bin, num)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "12 or later") {
			t.Errorf("source %d: %v, want a refusal naming %q and 12 or later", num, err, want)
		}
	}
	if err := checkDumpVersion(context.Background(), bin, 120020); err != nil {
		t.Errorf("a 12 source: %v", err)
	}
}
