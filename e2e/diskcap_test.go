package e2e

import (
	"strings"
	"testing"
	"time"
)

// With branches.max_changed_bytes set, the daemon turns a branch that
// writes past it read-only within a few of its (default, 5 s) samples: the
// JSON says why, reads work, writes fail with PostgreSQL's read-only error,
// and a reset makes it writable again.
func TestDiskCapDaemon(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{Driver: "btrfs", Branches: "max_changed_bytes = \"8M\"\n"})
	b := d.create(t, root, "capped")
	// One MiB per statement: the daemon may cut the session off midway.
	sql := "CREATE TABLE big (x text);" + strings.Repeat(" INSERT INTO big SELECT repeat(md5(i::text), 32) FROM generate_series(1, 1024) i;", 20)
	_, stderr, code := psql(t, b.ConnectionURI, sql)
	t.Logf("writing 20 MiB: exit %d %s", code, stderr)
	eventually(t, 30*time.Second, "branch JSON names branches.max_changed_bytes", func() bool {
		return strings.Contains(d.get(t, root, "capped").Error, "branches.max_changed_bytes")
	})
	t.Logf("branch says: %s", d.get(t, root, "capped").Error)
	// The restart into read-only may still be under way: a connection waits
	// for it.
	var rows string
	eventually(t, 30*time.Second, "rows readable", func() bool {
		out, _, code := psql(t, b.ConnectionURI, "SELECT count(*) > 0 FROM big")
		rows = out
		return code == 0
	})
	if rows != "t" {
		t.Fatalf("rows in the read-only branch: %q, want some", rows)
	}
	_, stderr, code = psql(t, b.ConnectionURI, "INSERT INTO big VALUES ('x')")
	if code == 0 || !strings.Contains(stderr, "read-only transaction") {
		t.Fatalf("write into a read-only branch: exit %d, stderr %q; want the read-only error", code, stderr)
	}
	if got := d.reset(t, root, "capped"); got.Error != "" {
		t.Fatalf("after reset the branch still says %q", got.Error)
	}
	if _, stderr, code := psql(t, b.ConnectionURI, "CREATE TABLE t (x int)"); code != 0 {
		t.Fatalf("write after reset: exit %d %s", code, stderr)
	}
}
