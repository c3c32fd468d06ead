package twinsync

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// A streamed transaction's buffer keeps changes in order across memory and
// its spill file, drops an aborted subtransaction and everything after its
// first change wherever that sits, and removes its file.
func TestStreamBufSpillAndSubAbort(t *testing.T) {
	dir := t.TempDir()
	rs := &relState{ver: 7, rel: &pgoutput.Relation{Columns: []pgoutput.RelationColumn{{Name: "v"}}}}
	rels := map[uint64]*relState{7: rs}
	mk := func(xid uint32, i int) *change {
		return &change{kind: 'I', rs: rs, xid: xid, newT: pgoutput.Tuple{{Kind: pgoutput.TupleText, Data: []byte(fmt.Sprintf("%d-%d", xid, i))}}}
	}
	for _, limit := range []int64{1 << 30, 1000, 1} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			b := &streamBuf{xid: 1}
			add := func(xid uint32, n int) {
				for i := range n {
					if err := b.add(mk(xid, i), dir, limit); err != nil {
						t.Fatal(err)
					}
				}
			}
			add(1, 30) // top level
			add(2, 20) // subxact 2, aborted below
			add(3, 10) // nested in 2: goes with it
			if err := b.abortSub(2); err != nil {
				t.Fatal(err)
			}
			add(4, 15) // a later subxact that commits
			add(1, 5)
			add(5, 3) // aborted at the very end
			if err := b.abortSub(5); err != nil {
				t.Fatal(err)
			}
			if err := b.abortSub(99); err != nil { // unknown: nothing to drop
				t.Fatal(err)
			}
			var got []string
			if err := b.each(rels, func(c *change) error {
				got = append(got, string(c.newT[0].Data))
				if c.rs != rs {
					t.Fatal("change lost its relation version")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := range 30 {
				want = append(want, fmt.Sprintf("1-%d", i))
			}
			for i := range 15 {
				want = append(want, fmt.Sprintf("4-%d", i))
			}
			for i := range 5 {
				want = append(want, fmt.Sprintf("1-%d", i))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("replayed %d changes:\n%v\nwant %d:\n%v", len(got), got, len(want), want)
			}
			if limit < 1<<30 {
				if b.file == nil || b.spilled == 0 {
					t.Fatal("nothing was spilled")
				}
				info, err := os.Stat(b.file.Name())
				if err != nil || info.Mode().Perm() != 0o600 {
					t.Fatalf("spill file mode %v, err %v; want 0600", info.Mode().Perm(), err)
				}
			}
			b.close()
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
				t.Fatalf("files left after close: %v", left)
			}
		})
	}
}

// NULLs, empty strings and unchanged TOAST values survive the spill format.
func TestSpillFormatRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rs := &relState{ver: 1, rel: &pgoutput.Relation{}}
	c := &change{kind: 'U', rs: rs, xid: 42, oldType: pgoutput.OldTupleFull,
		oldT: pgoutput.Tuple{{Kind: pgoutput.TupleText, Data: []byte("a\tb\n")}, {Kind: pgoutput.TupleNull}},
		newT: pgoutput.Tuple{{Kind: pgoutput.TupleText, Data: []byte{}}, {Kind: pgoutput.TupleUnchanged}}}
	tr := &change{kind: 'T', xid: 42, truncOpts: 3, truncRels: []string{`"public"."a"`, `"s"."b"`}}
	b := &streamBuf{xid: 42}
	b.add(c, dir, 0)
	b.add(tr, dir, 0)
	defer b.close()
	var got []*change
	if err := b.each(map[uint64]*relState{1: rs}, func(c *change) error { got = append(got, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d changes", len(got))
	}
	g := got[0]
	if g.kind != 'U' || g.xid != 42 || g.oldType != pgoutput.OldTupleFull || string(g.oldT[0].Data) != "a\tb\n" ||
		g.oldT[1].Kind != pgoutput.TupleNull || g.newT[0].Kind != pgoutput.TupleText || g.newT[0].Data == nil ||
		len(g.newT[0].Data) != 0 || g.newT[1].Kind != pgoutput.TupleUnchanged {
		t.Errorf("update came back as %+v", g)
	}
	if g := got[1]; g.kind != 'T' || g.truncOpts != 3 || fmt.Sprint(g.truncRels) != fmt.Sprint(tr.truncRels) {
		t.Errorf("truncate came back as %+v", g)
	}
}
