package drivertest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/engine"
)

// Config describes the driver under test.
type Config struct {
	// Open returns a driver whose root is the directory root (which may not
	// exist yet).
	Open func(t *testing.T, root string) engine.Driver
	// Root returns a fresh directory on the filesystem under test (a loop
	// mount for btrfs and XFS); Open is called on it.
	Root func(t *testing.T) string
	// TinyRoot returns a fresh directory on a small filesystem that the
	// disk-full test may fill up.
	TinyRoot func(t *testing.T) string
	// Fill fills the filesystem holding dir, leaving about leave bytes.
	Fill func(t *testing.T, dir string, leave int64)
	// FillMetadata uses up inodes and metadata space of dir's filesystem
	// (after Fill) and returns how many files that took.
	FillMetadata func(t *testing.T, dir string) int
	// CloneFitsWhenFull is true when a clone may succeed even with data and
	// metadata space used up (btrfs snapshots draw on its global reserve).
	CloneFitsWhenFull bool
	// CopyOnWrite is true when a fresh clone shares all its data.
	CopyOnWrite bool
	// Method is the expected Usage.Method.
	Method string
}

// Run runs the whole suite.
func Run(t *testing.T, c Config) {
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, c) })
	t.Run("Isolation", func(t *testing.T) { testIsolation(t, c) })
	t.Run("Usage", func(t *testing.T) { testUsage(t, c) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, c) })
	t.Run("NoSpace", func(t *testing.T) { testNoSpace(t, c) })
	t.Run("CloneTree", func(t *testing.T) { testCloneTree(t, c) })
}

// treeCloner is engine.TreeCloner.
type treeCloner interface {
	CloneTree(ctx context.Context, srcDir, dstDir string) error
}

// testCloneTree checks the merge the engine relies on to refresh pg_wal in
// a snapshot: newer source files replace, files only in the destination stay.
func testCloneTree(t *testing.T, c Config) {
	d := c.Open(t, filepath.Join(c.Root(t), "volumes"))
	tc, ok := d.(treeCloner)
	if !ok {
		t.Fatalf("%s driver has no CloneTree (engine.TreeCloner)", d.Name())
	}
	must(t, d.Create(ctx, "live"))
	must(t, d.Create(ctx, "snap"))
	live, snap := filepath.Join(d.Path("live"), "pg_wal"), filepath.Join(d.Path("snap"), "pg_wal")
	writeFile(t, filepath.Join(snap, "000000010000000000000001"), []byte("old 1"))
	writeFile(t, filepath.Join(snap, "000000010000000000000000"), []byte("only in snap"))
	writeFile(t, filepath.Join(live, "000000010000000000000001"), []byte("new 1, longer"))
	writeFile(t, filepath.Join(live, "000000010000000000000002"), []byte("new 2"))
	writeFile(t, filepath.Join(live, "archive_status", "000000010000000000000001.done"), nil)
	must(t, os.Chtimes(filepath.Join(live, "000000010000000000000002"), fixedTime, fixedTime))
	must(t, tc.CloneTree(ctx, live, snap))
	for name, want := range map[string]string{
		"000000010000000000000000":                     "only in snap",
		"000000010000000000000001":                     "new 1, longer",
		"000000010000000000000002":                     "new 2",
		"archive_status/000000010000000000000001.done": "",
	} {
		if got := readFile(t, filepath.Join(snap, name)); got != want {
			t.Errorf("after CloneTree %s = %q, want %q", name, got, want)
		}
	}
	if m := statMeta(t, filepath.Join(snap, "000000010000000000000002")); m.mtime != unix.NsecToTimespec(fixedTime.UnixNano()) {
		t.Errorf("CloneTree did not keep mtime: %+v", m.mtime)
	}
	// Into a new directory, and the copy is independent of its source.
	must(t, tc.CloneTree(ctx, live, filepath.Join(d.Path("snap"), "copy")))
	writeFile(t, filepath.Join(live, "000000010000000000000002"), []byte("changed"))
	if got := readFile(t, filepath.Join(d.Path("snap"), "copy", "000000010000000000000002")); got != "new 2" {
		t.Errorf("CloneTree copy changed with its source: %q", got)
	}
	if err := tc.CloneTree(ctx, filepath.Join(live, "missing"), filepath.Join(d.Path("snap"), "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CloneTree of a missing dir: %v, want ErrNotExist", err)
	}
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, 0o644))
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func list(t *testing.T, d engine.Driver) []string {
	t.Helper()
	l, ok := d.(engine.Lister)
	if !ok {
		t.Fatalf("%s driver does not implement engine.Lister", d.Name())
	}
	ids, err := l.List(ctx)
	must(t, err)
	return ids
}

var fixedTime = time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)

// populate gives volume id a small tree with every kind of entry and
// metadata a data directory has.
func populate(t *testing.T, d engine.Driver, id string) {
	t.Helper()
	p := d.Path(id)
	writeFile(t, filepath.Join(p, "PG_VERSION"), []byte("15\n"))
	writeFile(t, filepath.Join(p, "base", "1", "1259"), bytes.Repeat([]byte("heap"), 4096))
	must(t, os.Chmod(filepath.Join(p, "base", "1", "1259"), 0o600))
	must(t, os.Lchown(filepath.Join(p, "base", "1", "1259"), 12345, 23456))
	must(t, os.Mkdir(filepath.Join(p, "pg_notify"), 0o700)) // empty dir
	must(t, os.Lchown(filepath.Join(p, "pg_notify"), 12345, 23456))
	must(t, os.Symlink("../elsewhere/tblspc", filepath.Join(p, "pg_tblspc_link")))
	must(t, os.Lchown(filepath.Join(p, "pg_tblspc_link"), 12345, 23456))
	writeFile(t, filepath.Join(p, "empty"), nil)
	must(t, os.Chmod(filepath.Join(p, "empty"), 0o640|os.ModeSetgid))
	for _, f := range []string{"base/1/1259", "pg_notify", "empty", "base/1", "base"} {
		must(t, os.Chtimes(filepath.Join(p, f), fixedTime, fixedTime))
	}
}

type meta struct {
	mode     uint32
	uid, gid uint32
	mtime    unix.Timespec
	size     int64
	link     string
}

func statMeta(t *testing.T, p string) meta {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	m := meta{mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: st.Mtim, size: st.Size}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		m.link, _ = os.Readlink(p)
	} else if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		m.size = 0 // directory sizes differ between filesystems and histories
	}
	return m
}

// sameTree asserts that b has exactly a's entries, content and metadata.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	var names []string
	must(t, filepath.WalkDir(a, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		names = append(names, rel)
		return nil
	}))
	var got []string
	must(t, filepath.WalkDir(b, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(b, p)
		got = append(got, rel)
		return nil
	}))
	if !slices.Equal(names, got) {
		t.Fatalf("tree %s has %v, want %v", b, got, names)
	}
	for _, n := range names {
		ma, mb := statMeta(t, filepath.Join(a, n)), statMeta(t, filepath.Join(b, n))
		if n == "." {
			ma.mtime, mb.mtime = unix.Timespec{}, unix.Timespec{} // a volume root's mtime may be the driver's
		}
		if ma != mb {
			t.Errorf("%s: metadata %+v, want %+v", filepath.Join(b, n), mb, ma)
		}
		if ma.mode&unix.S_IFMT == unix.S_IFREG && readFile(t, filepath.Join(a, n)) != readFile(t, filepath.Join(b, n)) {
			t.Errorf("%s: content differs from %s", filepath.Join(b, n), filepath.Join(a, n))
		}
	}
}

func testLifecycle(t *testing.T, c Config) {
	d := c.Open(t, filepath.Join(c.Root(t), "volumes"))
	must(t, d.Create(ctx, "main"))
	if fi, err := os.Stat(d.Path("main")); err != nil || !fi.IsDir() {
		t.Fatalf("Create: Path(main)=%s is not a directory: %v", d.Path("main"), err)
	}
	populate(t, d, "main")
	must(t, d.Snapshot(ctx, "main", "snap1"))
	sameTree(t, d.Path("main"), d.Path("snap1"))
	must(t, d.Clone(ctx, "snap1", "branch-a"))
	must(t, d.Clone(ctx, "snap1", "branch_b.2"))
	sameTree(t, d.Path("main"), d.Path("branch-a"))
	sameTree(t, d.Path("main"), d.Path("branch_b.2"))
	// A clone of a writable volume (not a snapshot) is allowed too.
	must(t, d.Clone(ctx, "branch-a", "branch-c"))
	sameTree(t, d.Path("main"), d.Path("branch-c"))

	want := []string{"branch-a", "branch-c", "branch_b.2", "main", "snap1"}
	if got := list(t, d); !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	must(t, d.Destroy(ctx, "branch_b.2"))
	must(t, d.Destroy(ctx, "snap1")) // a snapshot with clones of it alive
	if _, err := os.Lstat(d.Path("branch_b.2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after Destroy, %s: %v", d.Path("branch_b.2"), err)
	}
	if err := d.Destroy(ctx, "snap1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Destroy of a destroyed snapshot = %v, want ErrNotFound", err)
	}
	sameTree(t, d.Path("main"), d.Path("branch-a"))
	want = []string{"branch-a", "branch-c", "main"}
	if got := list(t, d); !slices.Equal(got, want) {
		t.Fatalf("List after Destroy = %v, want %v", got, want)
	}
	// An id that was destroyed can be used again, as a writable volume.
	must(t, d.Clone(ctx, "main", "snap1"))
	writeFile(t, filepath.Join(d.Path("snap1"), "new"), []byte("x"))
	must(t, d.Create(ctx, "fresh"))
	entries, err := os.ReadDir(d.Path("fresh"))
	must(t, err)
	if len(entries) != 0 {
		t.Fatalf("Create made a non-empty volume: %v", entries)
	}
	if d.Name() == "" {
		t.Fatal("Name is empty")
	}
}

func testIsolation(t *testing.T, c Config) {
	d := c.Open(t, filepath.Join(c.Root(t), "volumes"))
	must(t, d.Create(ctx, "origin"))
	populate(t, d, "origin")
	writeFile(t, filepath.Join(d.Path("origin"), "data"), []byte("original"))
	must(t, d.Snapshot(ctx, "origin", "snap"))
	must(t, d.Clone(ctx, "snap", "c1"))
	must(t, d.Clone(ctx, "snap", "c2"))

	// Writes in a clone: overwrite, append, new file, delete.
	writeFile(t, filepath.Join(d.Path("c1"), "data"), []byte("changed in c1"))
	f, err := os.OpenFile(filepath.Join(d.Path("c1"), "base", "1", "1259"), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write([]byte("tail"))
	must(t, err)
	must(t, f.Close())
	writeFile(t, filepath.Join(d.Path("c1"), "only-c1"), []byte("x"))
	must(t, os.Remove(filepath.Join(d.Path("c1"), "PG_VERSION")))

	for _, id := range []string{"origin", "snap", "c2"} {
		p := d.Path(id)
		if got := readFile(t, filepath.Join(p, "data")); got != "original" {
			t.Errorf("%s/data = %q after writing in c1, want %q", id, got, "original")
		}
		if got := len(readFile(t, filepath.Join(p, "base", "1", "1259"))); got != 4*4096 {
			t.Errorf("%s/base/1/1259 has %d bytes after appending in c1, want %d", id, got, 4*4096)
		}
		if _, err := os.Lstat(filepath.Join(p, "only-c1")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/only-c1 exists: %v", id, err)
		}
		if _, err := os.Lstat(filepath.Join(p, "PG_VERSION")); err != nil {
			t.Errorf("%s/PG_VERSION after deleting it in c1: %v", id, err)
		}
	}
	// A write in the sibling is not visible in c1 either.
	writeFile(t, filepath.Join(d.Path("c2"), "data"), []byte("changed in c2"))
	if got := readFile(t, filepath.Join(d.Path("c1"), "data")); got != "changed in c1" {
		t.Errorf("c1/data = %q, want its own write", got)
	}
	// The origin changes after the snapshot: the snapshot does not.
	writeFile(t, filepath.Join(d.Path("origin"), "data"), []byte("changed in origin"))
	writeFile(t, filepath.Join(d.Path("origin"), "later"), []byte("x"))
	if got := readFile(t, filepath.Join(d.Path("snap"), "data")); got != "original" {
		t.Errorf("snap/data = %q after the origin changed, want %q", got, "original")
	}
	if _, err := os.Lstat(filepath.Join(d.Path("snap"), "later")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snap/later exists after creating it in the origin: %v", err)
	}
	must(t, d.Clone(ctx, "snap", "c3"))
	if got := readFile(t, filepath.Join(d.Path("c3"), "data")); got != "original" {
		t.Errorf("a new clone of the snapshot has data %q, want %q", got, "original")
	}
}

const mib = 1 << 20

// fillRandom writes n bytes of incompressible data to p and syncs it.
func fillRandom(t *testing.T, p string, off, n int64) {
	t.Helper()
	writeRandom(t, p, off, n)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	must(t, err)
	defer f.Close()
	must(t, f.Sync())
}

// writeRandom writes n bytes of incompressible data to p, leaving them in
// the page cache.
func writeRandom(t *testing.T, p string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	must(t, err)
	defer f.Close()
	r := rand.New(rand.NewPCG(uint64(off), uint64(n)))
	buf := make([]byte, mib)
	for done := int64(0); done < n; done += mib {
		for i := 0; i < len(buf); i += 8 {
			v := r.Uint64()
			for k := range 8 {
				buf[i+k] = byte(v >> (8 * k))
			}
		}
		_, err := f.WriteAt(buf[:min(mib, n-done)], off+done)
		must(t, err)
	}
}

func usage(t *testing.T, d engine.Driver, id string) engine.Usage {
	t.Helper()
	u, err := d.Usage(ctx, id)
	must(t, err)
	t.Logf("usage %s: total %d exclusive %d (%.1f MiB) method %s", id, u.TotalBytes, u.ExclusiveBytes, float64(u.ExclusiveBytes)/mib, u.Method)
	return u
}

func testUsage(t *testing.T, c Config) {
	d := c.Open(t, filepath.Join(c.Root(t), "volumes"))
	must(t, d.Create(ctx, "big"))
	for i := range 4 {
		fillRandom(t, filepath.Join(d.Path("big"), "seg"+string(rune('0'+i))), 0, 50*mib)
	}
	must(t, d.Snapshot(ctx, "big", "snap"))
	must(t, d.Clone(ctx, "snap", "clone"))

	u := usage(t, d, "clone")
	if u.Method != c.Method {
		t.Errorf("Usage.Method = %q, want %q", u.Method, c.Method)
	}
	if u.TotalBytes != 200*mib {
		t.Errorf("TotalBytes of a clone of 200 MiB = %d", u.TotalBytes)
	}
	if c.CopyOnWrite {
		if u.ExclusiveBytes > 1*mib {
			t.Errorf("a fresh clone has %d exclusive bytes, want near 0", u.ExclusiveBytes)
		}
	} else if u.ExclusiveBytes != u.TotalBytes {
		t.Errorf("ExclusiveBytes %d != TotalBytes %d for a full copy", u.ExclusiveBytes, u.TotalBytes)
	}

	// Overwrite 10 MiB in the middle of one file and add 2 MiB in a new one,
	// unsynced: Usage must count data still in the page cache.
	writeRandom(t, filepath.Join(d.Path("clone"), "seg1"), 20*mib, 10*mib)
	writeRandom(t, filepath.Join(d.Path("clone"), "new"), 0, 2*mib)
	u2 := usage(t, d, "clone")
	if u2.TotalBytes != 202*mib {
		t.Errorf("TotalBytes after adding 2 MiB = %d, want %d", u2.TotalBytes, 202*mib)
	}
	if c.CopyOnWrite {
		if u2.ExclusiveBytes < 12*mib-64*1024 || u2.ExclusiveBytes > 13*mib {
			t.Errorf("after writing 12 MiB in a clone ExclusiveBytes = %d (%.1f MiB), want about 12 MiB", u2.ExclusiveBytes, float64(u2.ExclusiveBytes)/mib)
		}
		// The origin snapshot now owns the 10 MiB the clone replaced: at
		// most that, never the shared rest.
		if us := usage(t, d, "snap"); us.ExclusiveBytes > 11*mib {
			t.Errorf("snapshot ExclusiveBytes = %d, want at most the 10 MiB its clone replaced", us.ExclusiveBytes)
		}
	} else if u2.ExclusiveBytes != u2.TotalBytes {
		t.Errorf("ExclusiveBytes %d != TotalBytes %d for a full copy", u2.ExclusiveBytes, u2.TotalBytes)
	}
	if _, err := d.Usage(ctx, "nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Usage of a missing volume = %v, want ErrNotFound", err)
	}
}

// dirNames lists everything in the driver's root including its bookkeeping,
// so a test sees any leftover.
func dirNames(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	must(t, filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		names = append(names, rel)
		return nil
	}))
	return names
}

func testBadInput(t *testing.T, c Config) {
	root := filepath.Join(c.Root(t), "volumes")
	d := c.Open(t, root)
	must(t, d.Create(ctx, "vol"))
	populate(t, d, "vol")
	must(t, d.Snapshot(ctx, "vol", "snap"))
	must(t, d.Clone(ctx, "snap", "taken"))
	writeFile(t, filepath.Join(d.Path("taken"), "mine"), []byte("keep me"))
	before := dirNames(t, root)

	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: error %v, want %v", what, err, want)
		} else {
			t.Logf("%s: %v", what, err)
		}
		if after := dirNames(t, root); !slices.Equal(before, after) {
			t.Errorf("%s left something behind: root has %v, had %v", what, after, before)
		}
	}
	check("clone from a missing snapshot", d.Clone(ctx, "missing", "x"), engine.ErrNotFound)
	check("snapshot of a missing volume", d.Snapshot(ctx, "missing", "x"), engine.ErrNotFound)
	check("clone into an existing id", d.Clone(ctx, "snap", "taken"), engine.ErrExists)
	check("snapshot into an existing id", d.Snapshot(ctx, "vol", "snap"), engine.ErrExists)
	check("create an existing id", d.Create(ctx, "vol"), engine.ErrExists)
	check("destroy a missing id", d.Destroy(ctx, "missing"), engine.ErrNotFound)
	if got := readFile(t, filepath.Join(d.Path("taken"), "mine")); got != "keep me" {
		t.Errorf("a refused clone changed the existing volume: %q", got)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "/abs", ".hidden", "sp ace", "x\x00y"} {
		check("create "+bad, d.Create(ctx, bad), engine.ErrInvalidID)
		check("clone into "+bad, d.Clone(ctx, "snap", bad), engine.ErrInvalidID)
		check("clone from "+bad, d.Clone(ctx, bad, "fine"), engine.ErrInvalidID)
		check("snapshot into "+bad, d.Snapshot(ctx, "vol", bad), engine.ErrInvalidID)
		check("destroy "+bad, d.Destroy(ctx, bad), engine.ErrInvalidID)
		if _, err := d.Usage(ctx, bad); !errors.Is(err, engine.ErrInvalidID) {
			t.Errorf("usage %q: %v, want ErrInvalidID", bad, err)
		}
	}
}

func testNoSpace(t *testing.T, c Config) {
	root := filepath.Join(c.TinyRoot(t), "volumes")
	d := c.Open(t, root)
	must(t, d.Create(ctx, "vol"))
	// Many files, so even a metadata-only clone needs new inodes and
	// directory blocks.
	for i := range 64 {
		dir := filepath.Join(d.Path("vol"), "base", string(rune('a'+i%26))+string(rune('a'+i/26)))
		for j := range 40 {
			writeFile(t, filepath.Join(dir, string(rune('a'+j%26))+string(rune('a'+j/26))), bytes.Repeat([]byte{byte(j)}, 8192))
		}
	}
	fillRandom(t, filepath.Join(d.Path("vol"), "big"), 0, 24*mib)
	must(t, d.Snapshot(ctx, "vol", "snap"))
	// Leave a little room so the clone fails part way, not at its first step.
	c.Fill(t, filepath.Dir(root), 512<<10)
	before := dirNames(t, root)

	err := d.Clone(ctx, "snap", "clone")
	if err == nil && c.CopyOnWrite {
		// A copy-on-write clone needs no data space; it fits in what
		// metadata space is left. Its first real write must fail, then
		// with metadata used up too the clone itself must fail cleanly.
		t.Logf("clone on a filesystem without free data space succeeded (copy-on-write)")
		if werr := os.WriteFile(filepath.Join(d.Path("clone"), "big"), make([]byte, 32*mib), 0o600); werr == nil {
			t.Fatal("writing 32 MiB into a clone on a full filesystem succeeded")
		}
		must(t, d.Destroy(ctx, "clone"))
		n := c.FillMetadata(t, filepath.Dir(root))
		t.Logf("filled metadata with %d small files", n)
		before = dirNames(t, root)
		err = d.Clone(ctx, "snap", "clone")
		if err == nil && c.CloneFitsWhenFull {
			t.Logf("clone with data and metadata space used up succeeded (the filesystem keeps a reserve for it)")
			if werr := os.WriteFile(filepath.Join(d.Path("clone"), "more"), make([]byte, 1*mib), 0o600); werr == nil {
				t.Fatal("writing 1 MiB into a clone on a full filesystem succeeded")
			}
			// Destroying is how space is freed: it must work when full.
			must(t, d.Destroy(ctx, "clone"))
			if after := dirNames(t, root); !slices.Equal(before, after) {
				t.Errorf("destroy on a full filesystem left something behind: root has %d entries, had %d", len(after), len(before))
			}
			return
		}
	}
	if !errors.Is(err, engine.ErrNoSpace) {
		t.Fatalf("clone on a full filesystem: %v, want ErrNoSpace", err)
	}
	t.Logf("clone on a full filesystem: %v", err)
	if after := dirNames(t, root); !slices.Equal(before, after) {
		t.Errorf("failed clone left something behind: root has %d entries, had %d", len(after), len(before))
	}
	for _, id := range list(t, d) {
		if id != "vol" && id != "snap" {
			t.Errorf("failed clone left volume %s", id)
		}
	}
}
