// Package pgoutput is pgtwin's logical replication client: a replication
// connection (IDENTIFY_SYSTEM, CREATE/DROP_REPLICATION_SLOT, START_REPLICATION,
// the CopyData framing of XLogData and keepalives) on github.com/jackc/pglogrepl,
// and what pglogrepl lacks: a strict decoder for the messages of PostgreSQL's
// built-in "pgoutput" plugin, protocol versions 1 and 2, with stream state
// (Decoder), relation diffing (RelationSet) and plugin arguments (PluginArgs).
//
// pglogrepl is guarded where it falls short, at the call site: it pastes
// slot and plugin names into commands unquoted (quoted here); it returns
// from START_REPLICATION's error before ReadyForQuery (read here); it copies
// the write position into a zero flush or apply position (status updates
// are encoded here). Its message decoder (ParseV2) is not used: it panics on
// a truncated message, accepts trailing bytes, and allocates and copies
// every column value (on an UPDATE of a REPLICA IDENTITY FULL row, 21
// allocations and about twice the time of this decoder, which returns
// values pointing into the message).
//
// It speaks the protocol and nothing else: it must not know about masking,
// the twin, branches or how changes are applied. Decoded tuple values are
// the server's bytes, unparsed and uncopied; what they mean is the caller's
// business.
//
// A Conn is not safe for concurrent use. The usual loop is one goroutine that
// calls ReceiveMessage with a deadline no later than the next standby status
// is due, and sends SendStandbyStatus between receives:
//
//	for {
//		ctx, cancel := context.WithDeadline(ctx, nextStatus)
//		msg, err := conn.ReceiveMessage(ctx)
//		cancel()
//		if pgoutput.Timeout(err) { send status; continue }
//		...
//	}
package pgoutput
