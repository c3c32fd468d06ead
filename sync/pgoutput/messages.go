package pgoutput

import "time"

// MessageType is a pgoutput message's first byte.
type MessageType byte

// pgoutput message types (protocol versions 1 and 2).
const (
	TypeBegin        MessageType = 'B'
	TypeCommit       MessageType = 'C'
	TypeOrigin       MessageType = 'O'
	TypeRelation     MessageType = 'R'
	TypeType         MessageType = 'Y'
	TypeInsert       MessageType = 'I'
	TypeUpdate       MessageType = 'U'
	TypeDelete       MessageType = 'D'
	TypeTruncate     MessageType = 'T'
	TypeMessage      MessageType = 'M'
	TypeStreamStart  MessageType = 'S'
	TypeStreamStop   MessageType = 'E'
	TypeStreamCommit MessageType = 'c'
	TypeStreamAbort  MessageType = 'A'
)

func (t MessageType) String() string {
	switch t {
	case TypeBegin:
		return "Begin"
	case TypeCommit:
		return "Commit"
	case TypeOrigin:
		return "Origin"
	case TypeRelation:
		return "Relation"
	case TypeType:
		return "Type"
	case TypeInsert:
		return "Insert"
	case TypeUpdate:
		return "Update"
	case TypeDelete:
		return "Delete"
	case TypeTruncate:
		return "Truncate"
	case TypeMessage:
		return "Message"
	case TypeStreamStart:
		return "StreamStart"
	case TypeStreamStop:
		return "StreamStop"
	case TypeStreamCommit:
		return "StreamCommit"
	case TypeStreamAbort:
		return "StreamAbort"
	}
	return "Unknown(" + string(rune(t)) + ")"
}

// ProtocolMessage is one decoded pgoutput message: one of the pointer types
// below.
type ProtocolMessage interface{ Type() MessageType }

// Begin starts a transaction that is sent whole (not streamed).
type Begin struct {
	FinalLSN   LSN // LSN of the commit record
	CommitTime time.Time
	Xid        uint32
}

// Commit ends the transaction opened by Begin. Acknowledge
// TransactionEndLSN once the transaction is durable on the target.
type Commit struct {
	Flags             uint8 // unused, 0
	CommitLSN         LSN
	TransactionEndLSN LSN
	CommitTime        time.Time
}

// Origin names the replication origin a transaction came from.
type Origin struct {
	CommitLSN LSN // commit LSN on the origin server
	Name      string
}

// Replica identity settings in Relation.ReplicaIdentity.
const (
	ReplicaIdentityDefault = 'd' // primary key
	ReplicaIdentityNothing = 'n'
	ReplicaIdentityFull    = 'f'
	ReplicaIdentityIndex   = 'i' // USING INDEX
)

// ColumnFlagKey marks a column that is part of the replica identity.
const ColumnFlagKey = 1

// Relation describes a table before its first change in a session and again
// after its definition changed. Tuples of the relation list values in
// Columns order.
type Relation struct {
	Xid             uint32 // set inside a stream: the (sub)transaction's xid
	RelationID      uint32 // table OID
	Namespace       string // "" means pg_catalog
	RelationName    string
	ReplicaIdentity byte
	Columns         []RelationColumn
}

// RelationColumn is one column of a Relation.
type RelationColumn struct {
	Flags        uint8
	Name         string
	DataType     uint32 // type OID
	TypeModifier int32  // atttypmod, -1 if none
}

// IsKey reports whether the column is part of the replica identity.
func (c RelationColumn) IsKey() bool { return c.Flags&ColumnFlagKey != 0 }

// TypeInfo describes a non-builtin data type before a Relation that uses it.
type TypeInfo struct {
	Xid       uint32
	DataType  uint32
	Namespace string
	Name      string
}

// Old-tuple kinds in Update.OldTupleType and Delete.OldTupleType.
const (
	OldTupleKey  = 'K' // replica identity columns only (DEFAULT or USING INDEX)
	OldTupleFull = 'O' // the whole old row (REPLICA IDENTITY FULL)
)

// Insert is a new row.
type Insert struct {
	Xid        uint32 // set inside a stream
	RelationID uint32
	Tuple      Tuple
}

// Update is a changed row. OldTupleType is 0 when no old tuple is sent: the
// identity did not change and the table is not REPLICA IDENTITY FULL.
type Update struct {
	Xid          uint32
	RelationID   uint32
	OldTupleType byte
	OldTuple     Tuple
	NewTuple     Tuple
}

// Delete is a removed row, identified by OldTuple.
type Delete struct {
	Xid          uint32
	RelationID   uint32
	OldTupleType byte
	OldTuple     Tuple
}

// Truncate options.
const (
	TruncateCascade         = 1
	TruncateRestartIdentity = 2
)

// Truncate empties tables, all in one statement.
type Truncate struct {
	Xid         uint32
	Options     uint8
	RelationIDs []uint32
}

// Cascade reports TRUNCATE ... CASCADE.
func (t *Truncate) Cascade() bool { return t.Options&TruncateCascade != 0 }

// RestartIdentity reports TRUNCATE ... RESTART IDENTITY.
func (t *Truncate) RestartIdentity() bool { return t.Options&TruncateRestartIdentity != 0 }

// Message is a pg_logical_emit_message. A transactional one arrives inside
// its transaction; a non-transactional one arrives on its own, at once,
// even if its transaction later aborts.
type Message struct {
	Xid           uint32 // set inside a stream
	Transactional bool
	LSN           LSN
	Prefix        string
	Content       []byte
}

// StreamStart opens a segment of a large in-progress transaction. Changes
// up to StreamStop belong to it; their Xid says which (sub)transaction made
// them.
type StreamStart struct {
	Xid          uint32 // top-level transaction
	FirstSegment bool
}

// StreamStop closes a segment.
type StreamStop struct{}

// StreamCommit commits a streamed transaction: apply all its segments.
type StreamCommit struct {
	Xid               uint32
	Flags             uint8
	CommitLSN         LSN
	TransactionEndLSN LSN
	CommitTime        time.Time
}

// StreamAbort aborts a streamed transaction (SubXid == Xid) or one of its
// subtransactions: discard the changes of SubXid and of everything the
// stream sent after SubXid's first change (later subtransactions nested in
// it are aborted with it).
type StreamAbort struct {
	Xid    uint32
	SubXid uint32
	// AbortLSN and AbortTime come only from servers that stream in parallel
	// (protocol 4, PostgreSQL 16+); zero otherwise.
	AbortLSN  LSN
	AbortTime time.Time
}

func (*Begin) Type() MessageType        { return TypeBegin }
func (*Commit) Type() MessageType       { return TypeCommit }
func (*Origin) Type() MessageType       { return TypeOrigin }
func (*Relation) Type() MessageType     { return TypeRelation }
func (*TypeInfo) Type() MessageType     { return TypeType }
func (*Insert) Type() MessageType       { return TypeInsert }
func (*Update) Type() MessageType       { return TypeUpdate }
func (*Delete) Type() MessageType       { return TypeDelete }
func (*Truncate) Type() MessageType     { return TypeTruncate }
func (*Message) Type() MessageType      { return TypeMessage }
func (*StreamStart) Type() MessageType  { return TypeStreamStart }
func (*StreamStop) Type() MessageType   { return TypeStreamStop }
func (*StreamCommit) Type() MessageType { return TypeStreamCommit }
func (*StreamAbort) Type() MessageType  { return TypeStreamAbort }
