package twinsync

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// valueMasker masks single values by the masker's column position
// (anonymize.TableMasker).
type valueMasker interface {
	Columns() []string
	MaskValue(i int, v []byte) ([]byte, error)
}

// relState is one version of a source relation as the session knows it:
// its description, its twin name and how its columns are masked. Changes
// keep the version they were masked with, so a buffered stream applies
// with the columns it was received with.
type relState struct {
	ver    uint64
	rel    *pgoutput.Relation
	qname  string
	masker valueMasker // nil: nothing to mask
	maskAt []int       // relation column → masker column, -1: kept
	// outside: a table the publication sends and the sync leaves out;
	// its changes are dropped before they are masked or buffered.
	outside bool
}

// change is one masked row change (or truncate), ready to apply.
type change struct {
	kind      byte // 'I', 'U', 'D', 'T'
	rs        *relState
	xid       uint32
	oldType   byte
	oldT      pgoutput.Tuple
	newT      pgoutput.Tuple
	truncOpts uint8
	truncRels []string
}

// mask returns t with every masked column transformed. Values of kept
// columns are not copied.
func (rs *relState) mask(t pgoutput.Tuple) (pgoutput.Tuple, error) {
	if t == nil {
		return nil, nil
	}
	if len(t) != len(rs.rel.Columns) {
		return nil, fmt.Errorf("table %s: tuple has %d columns, relation %d", rs.qname, len(t), len(rs.rel.Columns))
	}
	out := make(pgoutput.Tuple, len(t))
	for i, v := range t {
		switch v.Kind {
		case pgoutput.TupleBinary:
			return nil, fmt.Errorf("table %s: binary tuple values are not supported", rs.qname)
		case pgoutput.TupleText:
			if rs.masker != nil && rs.maskAt[i] >= 0 {
				m, err := rs.masker.MaskValue(rs.maskAt[i], v.Data)
				if err != nil {
					return nil, err
				}
				if m == nil {
					out[i] = pgoutput.TupleColumn{Kind: pgoutput.TupleNull}
				} else {
					out[i] = pgoutput.TupleColumn{Kind: pgoutput.TupleText, Data: m}
				}
				continue
			}
		}
		out[i] = v
	}
	return out, nil
}

func (c *change) size() int64 {
	n := int64(64)
	for _, v := range c.oldT {
		n += int64(len(v.Data)) + 8
	}
	for _, v := range c.newT {
		n += int64(len(v.Data)) + 8
	}
	return n
}

// streamBuf holds a streamed transaction until its commit: in memory up to
// a limit, then in a spill file. Changes are masked before they are
// buffered, so the file holds no source value.
type streamBuf struct {
	xid      uint32
	mem      []*change
	memBytes int64
	file     *os.File
	w        *bufio.Writer
	inFile   int   // changes in the file
	fileSize int64 // bytes written to it
	// subStart is where each subtransaction's first change sits: its
	// abort drops it and everything after.
	subStart map[uint32]bufPos
	spilled  int64 // bytes written in all
}

type bufPos struct {
	index  int   // changes before it
	offset int64 // file size before it
}

func (b *streamBuf) len() int { return b.inFile + len(b.mem) }

func (b *streamBuf) add(c *change, dir string, limit int64) error {
	if _, ok := b.subStart[c.xid]; !ok {
		if b.subStart == nil {
			b.subStart = map[uint32]bufPos{}
		}
		b.subStart[c.xid] = bufPos{index: b.len(), offset: b.fileSize} // fixed up if spilled later
	}
	b.mem = append(b.mem, c)
	b.memBytes += c.size()
	if b.memBytes > limit {
		return b.spill(dir)
	}
	return nil
}

func (b *streamBuf) spill(dir string) error {
	before := b.fileSize
	defer func() { b.spilled += b.fileSize - before }()
	if b.file == nil {
		f, err := os.CreateTemp(dir, "stream-*.spill") // mode 0600
		if err != nil {
			return fmt.Errorf("spill streamed transaction: %w", err)
		}
		b.file, b.w = f, bufio.NewWriterSize(f, 1<<16)
	}
	// Subtransactions that start in memory get their file offsets now.
	offsets := make([]int64, len(b.mem))
	for i, c := range b.mem {
		offsets[i] = b.fileSize
		n, err := writeChange(b.w, c)
		if err != nil {
			return fmt.Errorf("spill streamed transaction: %w", err)
		}
		b.fileSize += n
	}
	for x, p := range b.subStart {
		if p.index >= b.inFile {
			p.offset = offsets[p.index-b.inFile]
			b.subStart[x] = p
		}
	}
	b.inFile += len(b.mem)
	b.mem, b.memBytes = nil, 0
	return nil
}

// abortSub drops subtransaction sub and everything after its first change.
func (b *streamBuf) abortSub(sub uint32) error {
	p, ok := b.subStart[sub]
	if !ok {
		return nil
	}
	if p.index >= b.inFile {
		b.mem = b.mem[:p.index-b.inFile]
		b.memBytes = 0
		for _, c := range b.mem {
			b.memBytes += c.size()
		}
	} else {
		if err := b.w.Flush(); err != nil {
			return err
		}
		if err := b.file.Truncate(p.offset); err != nil {
			return fmt.Errorf("drop aborted subtransaction: %w", err)
		}
		if _, err := b.file.Seek(p.offset, io.SeekStart); err != nil {
			return err
		}
		b.w.Reset(b.file)
		b.inFile, b.fileSize, b.mem, b.memBytes = p.index, p.offset, nil, 0
	}
	for x, q := range b.subStart {
		if q.index >= p.index {
			delete(b.subStart, x)
		}
	}
	return nil
}

// each calls fn with every change in order.
func (b *streamBuf) each(rels map[uint64]*relState, fn func(*change) error) error {
	if b.file != nil {
		if err := b.w.Flush(); err != nil {
			return err
		}
		if _, err := b.file.Seek(0, io.SeekStart); err != nil {
			return err
		}
		r := bufio.NewReaderSize(b.file, 1<<16)
		for i := 0; i < b.inFile; i++ {
			c, err := readChange(r, rels)
			if err != nil {
				return fmt.Errorf("read spilled change: %w", err)
			}
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	for _, c := range b.mem {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func (b *streamBuf) close() {
	if b.file != nil {
		b.file.Close()
		os.Remove(b.file.Name())
		b.file = nil
	}
	b.mem = nil
}

// removeSpills removes spill files a crash left behind.
func removeSpills(dir string) {
	if dir == "" {
		return
	}
	old, _ := filepath.Glob(filepath.Join(dir, "stream-*.spill"))
	for _, p := range old {
		os.Remove(p)
	}
}

// Spill format: kind, relation version, xid, old tuple kind, then tuples
// (count, then kind and length-prefixed bytes each), or for a truncate its
// options and names.
func writeChange(w *bufio.Writer, c *change) (int64, error) {
	var n int64
	var hdr [14]byte
	hdr[0] = c.kind
	if c.rs != nil {
		binary.BigEndian.PutUint64(hdr[1:], c.rs.ver)
	}
	binary.BigEndian.PutUint32(hdr[9:], c.xid)
	hdr[13] = c.oldType
	w.Write(hdr[:])
	n += int64(len(hdr))
	if c.kind == 'T' {
		w.WriteByte(c.truncOpts)
		n++
		n += writeTuple(w, truncTuple(c.truncRels))
		return n, nil
	}
	n += writeTuple(w, c.oldT)
	n += writeTuple(w, c.newT)
	return n, nil
}

func truncTuple(names []string) pgoutput.Tuple {
	t := make(pgoutput.Tuple, len(names))
	for i, s := range names {
		t[i] = pgoutput.TupleColumn{Kind: pgoutput.TupleText, Data: []byte(s)}
	}
	return t
}

func writeTuple(w *bufio.Writer, t pgoutput.Tuple) int64 {
	var b [5]byte
	binary.BigEndian.PutUint32(b[:4], uint32(len(t)))
	if t == nil {
		binary.BigEndian.PutUint32(b[:4], 0xffffffff)
	}
	w.Write(b[:4])
	n := int64(4)
	for _, v := range t {
		b[0] = v.Kind
		binary.BigEndian.PutUint32(b[1:], uint32(len(v.Data)))
		w.Write(b[:])
		w.Write(v.Data)
		n += 5 + int64(len(v.Data))
	}
	return n
}

func readChange(r *bufio.Reader, rels map[uint64]*relState) (*change, error) {
	var hdr [14]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	c := &change{kind: hdr[0], xid: binary.BigEndian.Uint32(hdr[9:]), oldType: hdr[13]}
	if c.kind == 'T' {
		opts, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		t, err := readTuple(r)
		if err != nil {
			return nil, err
		}
		c.truncOpts = opts
		for _, v := range t {
			c.truncRels = append(c.truncRels, string(v.Data))
		}
		return c, nil
	}
	ver := binary.BigEndian.Uint64(hdr[1:])
	if c.rs = rels[ver]; c.rs == nil {
		return nil, errors.New("unknown relation version")
	}
	var err error
	if c.oldT, err = readTuple(r); err != nil {
		return nil, err
	}
	if c.newT, err = readTuple(r); err != nil {
		return nil, err
	}
	return c, nil
}

func readTuple(r *bufio.Reader) (pgoutput.Tuple, error) {
	var b [5]byte
	if _, err := io.ReadFull(r, b[:4]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(b[:4])
	if n == 0xffffffff {
		return nil, nil
	}
	t := make(pgoutput.Tuple, n)
	for i := range t {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, err
		}
		l := binary.BigEndian.Uint32(b[1:])
		d := make([]byte, l)
		if _, err := io.ReadFull(r, d); err != nil {
			return nil, err
		}
		t[i] = pgoutput.TupleColumn{Kind: b[0], Data: d}
		if b[0] == pgoutput.TupleNull || b[0] == pgoutput.TupleUnchanged {
			t[i].Data = nil
		}
	}
	return t, nil
}

// qualified is the twin name of a relation.
func qualified(r *pgoutput.Relation) string {
	ns := r.Namespace
	if ns == "" {
		ns = "pg_catalog"
	}
	return pgx.Identifier{ns, r.RelationName}.Sanitize()
}
