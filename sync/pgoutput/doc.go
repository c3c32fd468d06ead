// Package pgoutput is pgtwin's own logical replication client: a replication
// connection (IDENTIFY_SYSTEM, CREATE/DROP_REPLICATION_SLOT, START_REPLICATION,
// standby status updates) built on pgx's pgconn and pgproto3, and a decoder for
// the messages of PostgreSQL's built-in "pgoutput" plugin, protocol versions 1
// and 2 (streaming of large in-progress transactions).
//
// It exists because github.com/jackc/pglogrepl is not available to the build.
// It speaks the protocol and nothing else: it must not know about masking, the
// twin, branches or how changes are applied. Decoded tuple values are the
// server's bytes, unparsed and uncopied; what they mean is the caller's
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
