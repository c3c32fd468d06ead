package pgoutput

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrMalformed is wrapped by every decoding error caused by the input.
var ErrMalformed = errors.New("malformed pgoutput message")

// Decoder decodes a session's pgoutput messages in order. It tracks whether
// a stream segment is open, because changes inside one carry a leading xid.
// The zero value is ready; Reset it when a new replication stream starts.
type Decoder struct {
	inStream  bool
	streamXid uint32
}

// InStream reports whether a StreamStart has been decoded without its
// StreamStop, and the streamed transaction's xid.
func (d *Decoder) InStream() (bool, uint32) { return d.inStream, d.streamXid }

// Reset forgets stream state, for a new START_REPLICATION.
func (d *Decoder) Reset() { *d = Decoder{} }

// Decode decodes one message and follows stream segments. Decoded values
// point into data.
func (d *Decoder) Decode(data []byte) (ProtocolMessage, error) {
	m, err := Decode(data, d.inStream)
	if err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case *StreamStart:
		if d.inStream {
			return nil, fmt.Errorf("decode StreamStart for xid %d inside stream of xid %d: %w", m.Xid, d.streamXid, ErrMalformed)
		}
		d.inStream, d.streamXid = true, m.Xid
	case *StreamStop:
		if !d.inStream {
			return nil, fmt.Errorf("decode StreamStop outside a stream: %w", ErrMalformed)
		}
		d.inStream, d.streamXid = false, 0
	case *StreamCommit, *StreamAbort, *Begin, *Commit:
		if d.inStream {
			return nil, fmt.Errorf("decode %s inside stream of xid %d: %w", m.Type(), d.streamXid, ErrMalformed)
		}
	}
	return m, nil
}

// Decode decodes one message without state: inStream says whether it was
// sent between StreamStart and StreamStop.
func Decode(data []byte, inStream bool) (ProtocolMessage, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("decode: empty message: %w", ErrMalformed)
	}
	t := MessageType(data[0])
	r := reader{b: data, off: 1}
	m := decodeBody(t, &r, inStream)
	if r.err == nil && r.off != len(r.b) {
		r.fail(fmt.Sprintf("%d trailing bytes", len(r.b)-r.off))
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode %s: %w", t, r.err)
	}
	return m, nil
}

func decodeBody(t MessageType, r *reader, inStream bool) ProtocolMessage {
	var xid uint32
	if inStream {
		switch t {
		case TypeRelation, TypeType, TypeInsert, TypeUpdate, TypeDelete, TypeTruncate, TypeMessage:
			xid = r.u32()
		}
	}
	switch t {
	case TypeBegin:
		return &Begin{FinalLSN: r.lsn(), CommitTime: r.time(), Xid: r.u32()}
	case TypeCommit:
		return &Commit{Flags: r.u8(), CommitLSN: r.lsn(), TransactionEndLSN: r.lsn(), CommitTime: r.time()}
	case TypeOrigin:
		return &Origin{CommitLSN: r.lsn(), Name: r.str()}
	case TypeRelation:
		m := &Relation{Xid: xid, RelationID: r.u32(), Namespace: r.str(), RelationName: r.str(), ReplicaIdentity: r.u8()}
		n := r.count16(7) // flags, name's NUL, type, typmod
		if n > 0 {
			m.Columns = make([]RelationColumn, n)
		}
		for i := range m.Columns {
			m.Columns[i] = RelationColumn{Flags: r.u8(), Name: r.str(), DataType: r.u32(), TypeModifier: int32(r.u32())}
		}
		return m
	case TypeType:
		return &TypeInfo{Xid: xid, DataType: r.u32(), Namespace: r.str(), Name: r.str()}
	case TypeInsert:
		m := &Insert{Xid: xid, RelationID: r.u32()}
		r.expect('N')
		m.Tuple = r.tuple()
		return m
	case TypeUpdate:
		m := &Update{Xid: xid, RelationID: r.u32()}
		switch k := r.u8(); k {
		case OldTupleKey, OldTupleFull:
			m.OldTupleType = k
			m.OldTuple = r.tuple()
			r.expect('N')
		case 'N':
		default:
			r.fail(fmt.Sprintf("tuple kind %q", k))
		}
		m.NewTuple = r.tuple()
		return m
	case TypeDelete:
		m := &Delete{Xid: xid, RelationID: r.u32()}
		switch k := r.u8(); k {
		case OldTupleKey, OldTupleFull:
			m.OldTupleType = k
		default:
			r.fail(fmt.Sprintf("old tuple kind %q", k))
		}
		m.OldTuple = r.tuple()
		return m
	case TypeTruncate:
		m := &Truncate{Xid: xid}
		n := r.count32(4)
		m.Options = r.u8()
		if n > 0 {
			m.RelationIDs = make([]uint32, n)
		}
		for i := range m.RelationIDs {
			m.RelationIDs[i] = r.u32()
		}
		return m
	case TypeMessage:
		m := &Message{Xid: xid, Transactional: r.u8()&1 != 0, LSN: r.lsn(), Prefix: r.str()}
		m.Content = r.bytes(r.count32(1))
		return m
	case TypeStreamStart:
		return &StreamStart{Xid: r.u32(), FirstSegment: r.u8() == 1}
	case TypeStreamStop:
		return &StreamStop{}
	case TypeStreamCommit:
		return &StreamCommit{Xid: r.u32(), Flags: r.u8(), CommitLSN: r.lsn(), TransactionEndLSN: r.lsn(), CommitTime: r.time()}
	case TypeStreamAbort:
		m := &StreamAbort{Xid: r.u32(), SubXid: r.u32()}
		if r.remaining() > 0 {
			m.AbortLSN, m.AbortTime = r.lsn(), r.time()
		}
		return m
	}
	r.fail("unknown message type")
	return nil
}

// reader reads big-endian fields; after the first error every read returns
// zero, so decoders check r.err once at the end.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s at byte %d: %w", what, r.off, ErrMalformed)
	}
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > r.remaining() {
		r.fail(fmt.Sprintf("need %d bytes, have %d", n, r.remaining()))
		return nil
	}
	b := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) lsn() LSN { return LSN(r.u64()) }

func (r *reader) time() time.Time { return pgTime(int64(r.u64())) }

func (r *reader) str() string {
	if r.err != nil {
		return ""
	}
	i := bytes.IndexByte(r.b[r.off:], 0)
	if i < 0 {
		r.fail("unterminated string")
		return ""
	}
	s := string(r.b[r.off : r.off+i])
	r.off += i + 1
	return s
}

func (r *reader) bytes(n int) []byte { return r.take(n) }

// count16 reads an Int16 count of items of at least minSize bytes each,
// refusing counts the rest of the message cannot hold, so that corrupt input
// cannot make us allocate much.
func (r *reader) count16(minSize int) int {
	n := int(int16(r.u16()))
	return r.checkCount(n, minSize)
}

func (r *reader) count32(minSize int) int {
	n := int(int32(r.u32()))
	return r.checkCount(n, minSize)
}

func (r *reader) checkCount(n, minSize int) int {
	if r.err != nil {
		return 0
	}
	if n < 0 || n*minSize > r.remaining() {
		r.fail(fmt.Sprintf("count %d too large", n))
		return 0
	}
	return n
}

func (r *reader) expect(c byte) {
	if got := r.u8(); r.err == nil && got != c {
		r.fail(fmt.Sprintf("want %q, got %q", c, got))
	}
}

func (r *reader) tuple() Tuple {
	n := r.count16(1)
	if r.err != nil {
		return nil
	}
	t := make(Tuple, n)
	for i := range t {
		k := r.u8()
		t[i].Kind = k
		switch k {
		case TupleNull, TupleUnchanged:
		case TupleText, TupleBinary:
			t[i].Data = r.bytes(r.count32(1))
		default:
			r.fail(fmt.Sprintf("column %d kind %q", i, k))
		}
		if r.err != nil {
			return nil
		}
	}
	return t
}
