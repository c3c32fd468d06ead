package twin

import (
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/twin/api"
)

const mib = 1 << 20

// A branch that writes past branches.max_changed_bytes is restarted
// read-only within a few samples: reads work, writes fail with PostgreSQL's
// read-only error (which a session cannot SET away), and the branch says
// why. It stays so across suspend, a daemon restart and wake; a branch of it
// is writable; a reset clears it; a daemon restarted with a higher cap
// makes it writable again.
func TestDiskCap(t *testing.T) {
	t.Parallel()
	f := newFx(t, "btrfs", func(c *config.Config) {
		c.Branches.MaxChangedBytes = 8 * mib
		c.Branches.IdleSuspend = 0
	})
	ctx := context.Background()
	b := f.create(alice, api.CreateBranchRequest{Name: "cap"})
	c := dial(t, b.ConnectionURI)
	exec(t, c, "CREATE TABLE big (x text)")
	// A few samples under the cap change nothing.
	time.Sleep(600 * time.Millisecond)
	if r := f.record("cap"); r.ReadOnly != nil {
		t.Fatalf("fresh branch marked read-only: %+v", r.ReadOnly)
	}
	rows := fill(t, c, 20)
	c.Close(ctx)
	f.waitReadOnly("cap")

	c = dial(t, b.ConnectionURI)
	wantInts(t, "rows readable once read-only", ints(t, c, "SELECT count(*) FROM big"), rows)
	wantReadOnly(t, c, "INSERT INTO big VALUES ('x')")
	// A session cannot turn it off: a standby refuses read-write mode.
	wantReadOnly(t, c, "SET default_transaction_read_only = off; INSERT INTO big VALUES ('x')")
	if _, err := c.Exec(ctx, "BEGIN; SET TRANSACTION READ WRITE"); err == nil {
		t.Fatal("SET TRANSACTION READ WRITE succeeded on a read-only branch")
	} else {
		t.Logf("SET TRANSACTION READ WRITE: %v", err)
	}
	c.Close(ctx)
	got, err := f.tw.GetBranch(ctx, alice, "cap")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != api.StateReady || !strings.Contains(got.Error, "branches.max_changed_bytes") || !strings.Contains(got.Error, "reset") {
		t.Fatalf("branch JSON of a read-only branch: state %q error %q; want ready and a reason naming the cap and the reset", got.State, got.Error)
	}
	t.Logf("branch says: %s (changed_bytes %d)", got.Error, got.ChangedBytes)

	// A branch of it is a writable clone.
	kid := f.create(alice, api.CreateBranchRequest{Name: "cap-kid", Parent: "cap"})
	exec(t, dial(t, kid.ConnectionURI), "INSERT INTO big VALUES ('kid')")

	// Suspended, the daemon restarted, woken by a connection: still read-only.
	if _, err := f.tw.SuspendBranch(ctx, alice, "cap"); err != nil {
		t.Fatal(err)
	}
	f.restart()
	c = dial(t, b.ConnectionURI)
	wantReadOnly(t, c, "INSERT INTO big VALUES ('x')")
	c.Close(ctx)

	// A reset is a fresh, writable clone.
	got, err = f.tw.ResetBranch(ctx, alice, "cap")
	if err != nil {
		t.Fatal(err)
	}
	if r := f.record("cap"); r.ReadOnly != nil || r.Error != "" || got.Error != "" {
		t.Fatalf("after reset: mark %+v, record error %q, JSON error %q; want all cleared", r.ReadOnly, r.Error, got.Error)
	}
	c = dial(t, b.ConnectionURI)
	exec(t, c, "CREATE TABLE big (x text)")
	rows = fill(t, c, 20)
	c.Close(ctx)
	f.waitReadOnly("cap")

	// Suspended, then a daemon with a higher cap: the wake starts it
	// writable.
	if _, err := f.tw.SuspendBranch(ctx, alice, "cap"); err != nil {
		t.Fatal(err)
	}
	f.cfg.Branches.MaxChangedBytes = 1 << 30
	f.restart()
	c = dial(t, b.ConnectionURI)
	exec(t, c, "INSERT INTO big VALUES ('after the cap was raised')")
	rows++
	c.Close(ctx)
	if r := f.record("cap"); r.ReadOnly != nil || r.Error != "" {
		t.Fatalf("woken under a raised cap: mark %+v, error %q; want both cleared", r.ReadOnly, r.Error)
	}

	// The cap back at 8 MiB: the next daemon finds it over and running.
	f.cfg.Branches.MaxChangedBytes = 8 * mib
	f.restart()
	f.waitReadOnly("cap")

	// No cap at all: the running branch is restarted writable.
	f.cfg.Branches.MaxChangedBytes = 0
	f.restart()
	deadline := time.Now().Add(20 * time.Second)
	for f.record("cap").ReadOnly != nil || f.eng.ReadOnly(f.record("cap").ID) {
		if time.Now().After(deadline) {
			t.Fatal("branch still read-only 20s after the daemon restarted without a cap")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c = dial(t, b.ConnectionURI)
	exec(t, c, "INSERT INTO big VALUES ('without a cap')")
	wantInts(t, "rows without a cap", ints(t, c, "SELECT count(*) FROM big"), rows+1)
}

// fill writes up to n MiB into table big over c, one MiB per transaction,
// and returns the rows committed. The sampler may cut it off: the branch is
// restarted read-only under it, ending its session.
func fill(t *testing.T, c *pgx.Conn, n int) int64 {
	t.Helper()
	var rows int64
	for i := 0; i < n; i++ {
		// 1 KiB rows: below the TOAST threshold, so stored as written.
		_, err := c.Exec(context.Background(), "INSERT INTO big SELECT repeat(md5(i::text), 32) FROM generate_series(1, 1024) i")
		if err != nil {
			// Heap and WAL both count: 4 MiB of rows is about 8 MiB changed.
			if rows < 3*1024 {
				t.Fatalf("write %d of %d MiB (well under the cap): %v", i+1, n, err)
			}
			t.Logf("writer cut off after %d MiB: %v", i, err)
			return rows
		}
		rows += 1024
	}
	return rows
}

// waitReadOnly waits until the sampler has restarted branch name read-only.
func (f *fx) waitReadOnly(name string) {
	f.t.Helper()
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		r := f.record(name)
		if r.ReadOnly != nil {
			// The mark is recorded before the restart, which holds the
			// branch's lock until the standby accepts connections.
			_, unlock := f.tw.lockBranch(name)
			unlock()
			if _, running := f.eng.Instance(r.ID); !running || !f.eng.ReadOnly(r.ID) {
				f.t.Fatalf("branch %s marked read-only but its instance is not a running standby (running %v)", name, running)
			}
			f.t.Logf("read-only after %s: %+v", time.Since(start).Round(time.Millisecond), *r.ReadOnly)
			return
		}
		if time.Now().After(deadline) {
			u, _ := f.eng.Usage(context.Background(), r.ID)
			f.t.Fatalf("branch %s not read-only 20s after writing past its cap (changed bytes %d, state %s, mark %+v)", name, u.ExclusiveBytes, r.State, r.ReadOnly)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantReadOnly runs sql and wants PostgreSQL's read-only refusal (25006).
func wantReadOnly(t *testing.T, c *pgx.Conn, sql string) {
	t.Helper()
	_, err := c.Exec(context.Background(), sql)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25006" {
		t.Fatalf("%s on a read-only branch: got %v, want read_only_sql_transaction (25006)", sql, err)
	}
}

func TestOverCap(t *testing.T) {
	mark := &readOnlyMark{Cap: 100}
	for _, tc := range []struct {
		name        string
		mark        *readOnlyMark
		limit, used int64
		want        bool
	}{
		{"no cap", nil, 0, 1 << 40, false},
		{"under", nil, 100, 100, false},
		{"over", nil, 100, 101, true},
		{"marked, shrank below the same cap", mark, 100, 50, true},
		{"marked, cap removed", mark, 0, 500, false},
		{"marked, cap raised above usage", mark, 1000, 500, false},
		{"marked, cap raised but still over", mark, 400, 500, true},
		{"marked, cap lowered", mark, 50, 60, true},
	} {
		if got := overCap(tc.mark, tc.limit, tc.used); got != tc.want {
			t.Errorf("%s: overCap(%+v, %d, %d) = %v, want %v", tc.name, tc.mark, tc.limit, tc.used, got, tc.want)
		}
	}
}

// A writer faster than the sampler runs into the btrfs qgroup limit
// DiskCapMargin past the cap (PostgreSQL PANICs at it) instead of filling
// the pool, and the sampler then turns the branch read-only like any other.
func TestDiskCapBackstop(t *testing.T) {
	t.Parallel()
	const limit, margin = 8 * mib, 24 * mib
	f := newFx(t, "btrfs", func(c *config.Config) {
		c.Branches.MaxChangedBytes = limit
		c.Branches.IdleSuspend = 0
	})
	ctx := context.Background()
	startWithMargin := func() {
		f.tw.Stop()
		f.open(nil)
		f.tw.opts.DiskCapMargin = margin
		if err := f.tw.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	startWithMargin()
	b := f.create(alice, api.CreateBranchRequest{Name: "fast"})
	id := f.record("fast").ID
	if got := f.qgroupLimit(id); got != limit+margin {
		t.Fatalf("qgroup limit of a new branch = %d, want %d (cap + margin)", got, limit+margin)
	}

	// No sampler: only the hard limit stands between the writer and the pool.
	f.tw.Stop()
	inst, ok := f.eng.Instance(id)
	if !ok {
		t.Fatal("branch instance not running")
	}
	c, err := pgx.Connect(ctx, inst.ConnString(inst.Superuser, f.record("fast").Database))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Exec(ctx, "CREATE TABLE public.big (x text); INSERT INTO public.big SELECT repeat(md5(i::text), 32) FROM generate_series(1, 64*1024) i")
	c.Close(ctx)
	if err == nil {
		t.Fatal("64 MiB written into a branch whose hard limit is 32 MiB")
	}
	t.Logf("writer stopped: %v", err)
	// How it fails varies (a WAL write, a segment's rename, a checkpoint),
	// but it is EDQUOT and then a PANIC.
	logb, _ := os.ReadFile(f.eng.LogPath(id))
	quota, panicked := false, false
	for _, line := range strings.Split(string(logb), "\n") {
		if strings.Contains(line, "Disk quota exceeded") && !quota {
			t.Logf("server log: %s", line)
			quota = true
		}
		panicked = panicked || strings.Contains(line, "PANIC")
	}
	if !quota || !panicked {
		t.Fatalf("the writer was not stopped by the qgroup limit: no \"Disk quota exceeded\" and PANIC in %s", f.eng.LogPath(id))
	}
	u, err := f.eng.Usage(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if u.ExclusiveBytes > limit+margin {
		t.Fatalf("branch owns %d bytes, past its hard limit %d", u.ExclusiveBytes, limit+margin)
	}

	// The next daemon's sampler finds it over the cap: read-only, readable.
	startWithMargin()
	f.waitReadOnly("fast")
	c = dial(t, b.ConnectionURI)
	wantInts(t, "rows after the hard limit", ints(t, c, "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'big'"), 0)
	wantReadOnly(t, c, "CREATE TABLE t (x int)")
	c.Close(ctx)

	// A reset is a new volume with the hard limit set again.
	if _, err := f.tw.ResetBranch(ctx, alice, "fast"); err != nil {
		t.Fatal(err)
	}
	if got := f.qgroupLimit(id); got != limit+margin {
		t.Fatalf("qgroup limit after reset = %d, want %d", got, limit+margin)
	}
	exec(t, dial(t, b.ConnectionURI), "CREATE TABLE t (x int)")
}

// qgroupLimit is the max_excl of volume id's level-0 qgroup (0: none).
func (f *fx) qgroupLimit(id string) int64 {
	f.t.Helper()
	out, err := osexec.Command("btrfs", "qgroup", "show", "-e", "--raw", "-f", f.eng.Driver().Path(id)).CombinedOutput()
	if err != nil {
		f.t.Fatalf("btrfs qgroup show: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		fs := strings.Fields(line)
		if len(fs) >= 4 && strings.HasPrefix(fs[0], "0/") {
			if fs[3] == "none" {
				return 0
			}
			n, err := strconv.ParseInt(fs[3], 10, 64)
			if err != nil {
				f.t.Fatalf("btrfs qgroup show line %q: %v", line, err)
			}
			return n
		}
	}
	f.t.Fatalf("btrfs qgroup show: no level-0 qgroup in %q", out)
	return 0
}
