package twinsync

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestDumpSyncWriteback turns the writeback on: each table's heap and then
// its indexes are handed to the kernel's writeback (files found, bytes
// counted), and the sync still ends with every row in the twin.
func TestDumpSyncWriteback(t *testing.T) {
	oldOn, oldPages := writebackOn, earlyIndexPages
	writebackOn, earlyIndexPages = true, 0
	t.Cleanup(func() { writebackOn, earlyIndexPages = oldOn, oldPages })
	src := bigSource(t, 20000)
	tgtCluster, tgt := newTarget(t)
	log, logs := testLogger(t)
	d := &dumper{Source: source{URL: src.ConnString("app")}, Parallel: 2, Plan: plan(hashMasker{}), Log: log}
	if err := d.Run(context.Background(), tgt, nil); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := query[int64](t, tgtCluster, "SELECT count(*) FROM big1"); n != 20000 {
		t.Fatalf("big1: %d rows in the twin, want 20000", n)
	}
	files := map[string][]int{}
	for _, line := range strings.Split(logs.String(), "\n") {
		var e struct {
			Msg    string   `json:"message"`
			Tables []string `json:"tables"`
			Files  int      `json:"files"`
			Bytes  int64    `json:"bytes"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "writeback started" && e.Bytes > 0 {
			for _, tb := range e.Tables {
				files[tb] = append(files[tb], e.Files)
			}
		}
	}
	// Heap (and its forks), then heap and primary key.
	if f := files[`"public"."big1"`]; len(f) != 2 || f[0] < 1 || f[1] <= f[0] {
		t.Errorf("big1's writebacks covered %v files, want the heap's and then more with its index:\n%s", f, logs)
	}
}
