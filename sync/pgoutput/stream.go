package pgoutput

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// StreamMessage is what ReceiveMessage returns: *XLogData or
// *PrimaryKeepalive.
type StreamMessage interface{ streamMessage() }

// XLogData carries one pgoutput message.
type XLogData struct {
	// WALStart is the WAL position of the data; pgoutput sends 0 for
	// messages not tied to a record (Relation, Type). Acknowledge commit
	// end LSNs, never WALStart.
	WALStart     LSN
	ServerWALEnd LSN // server's current end of WAL
	ServerTime   time.Time
	// Data is the pgoutput message; decode it with a Decoder. It is the
	// caller's own copy: it stays valid after the next ReceiveMessage, and
	// decoded tuples point into it.
	Data []byte
}

// PrimaryKeepalive is the server's heartbeat.
type PrimaryKeepalive struct {
	ServerWALEnd LSN
	ServerTime   time.Time
	// ReplyRequested asks for a standby status update at once; the server
	// drops the connection after wal_sender_timeout without one.
	ReplyRequested bool
}

func (*XLogData) streamMessage()         {}
func (*PrimaryKeepalive) streamMessage() {}

// ReceiveMessage waits for the next message of the replication stream.
// When ctx's deadline passes it returns an error for which Timeout is true
// and the connection stays usable; cancellation of ctx also leaves it
// usable but returns context.Canceled.
func (c *Conn) ReceiveMessage(ctx context.Context) (StreamMessage, error) {
	if !c.streaming {
		return nil, ErrNotStreaming
	}
	for {
		msg, err := c.pg.ReceiveMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("receive replication message: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			return parseCopyData(m.Data)
		case *pgproto3.CopyDone:
			c.streaming = false
			c.drainToReady(ctx)
			return nil, ErrStreamDone
		case *pgproto3.ErrorResponse:
			// The server ends the command with the error; reading on to
			// ReadyForQuery leaves the connection usable for commands.
			c.streaming = false
			pgErr := pgconn.ErrorResponseToPgError(m)
			c.drainToReady(ctx)
			return nil, fmt.Errorf("replication stream: %w", pgErr)
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return nil, fmt.Errorf("replication stream: unexpected %T", msg)
		}
	}
}

func parseCopyData(b []byte) (StreamMessage, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("replication stream: empty CopyData")
	}
	switch b[0] {
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(b[1:])
		if err != nil {
			return nil, fmt.Errorf("replication stream: %w", err)
		}
		// pglogrepl's WALData points into the connection's read buffer,
		// which the next receive overwrites; decoded tuples point into
		// Data, so it is copied once here.
		return &XLogData{WALStart: LSN(x.WALStart), ServerWALEnd: LSN(x.ServerWALEnd), ServerTime: x.ServerTime,
			Data: bytes.Clone(x.WALData)}, nil
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(b[1:])
		if err != nil {
			return nil, fmt.Errorf("replication stream: %w", err)
		}
		return &PrimaryKeepalive{ServerWALEnd: LSN(k.ServerWALEnd), ServerTime: k.ServerTime, ReplyRequested: k.ReplyRequested}, nil
	default:
		return nil, fmt.Errorf("replication stream: unknown CopyData type %q", b[0])
	}
}

// StandbyStatus is a standby status update. All three positions are sent as
// given: a zero position is sent as zero, never filled in from another one,
// so the caller says exactly what is written, durable and applied. For a
// logical slot, Flush becomes confirmed_flush_lsn: send the end LSN of the
// last transaction made durable on the target, nothing later.
type StandbyStatus struct {
	Write, Flush, Apply LSN
	// ReplyRequested asks the server to answer with a keepalive at once.
	ReplyRequested bool
	// ClientTime defaults to now.
	ClientTime time.Time
}

// SendStandbyStatus sends a standby status update. It does not use
// pglogrepl.SendStandbyStatusUpdate, which copies the write position into
// a zero flush or apply position (acknowledging as durable what is only
// received) and writes without the context's deadline.
func (c *Conn) SendStandbyStatus(ctx context.Context, s StandbyStatus) error {
	if !c.streaming {
		return ErrNotStreaming
	}
	if s.ClientTime.IsZero() {
		s.ClientTime = time.Now()
	}
	buf := make([]byte, 34)
	buf[0] = 'r'
	binary.BigEndian.PutUint64(buf[1:], uint64(s.Write))
	binary.BigEndian.PutUint64(buf[9:], uint64(s.Flush))
	binary.BigEndian.PutUint64(buf[17:], uint64(s.Apply))
	binary.BigEndian.PutUint64(buf[25:], uint64(toPGTime(s.ClientTime)))
	if s.ReplyRequested {
		buf[33] = 1
	}
	if err := c.send(ctx, &pgproto3.CopyData{Data: buf}); err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	return nil
}

// EndStreaming leaves COPY BOTH mode (CopyDone) and reads to the end of the
// command, so the connection can run other commands (e.g. drop the slot).
// Messages still in flight are discarded.
func (c *Conn) EndStreaming(ctx context.Context) error {
	if !c.streaming {
		return ErrNotStreaming
	}
	if err := c.send(ctx, &pgproto3.CopyDone{}); err != nil {
		return fmt.Errorf("end streaming: %w", err)
	}
	var firstErr error
	for {
		msg, err := c.pg.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("end streaming: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			c.streaming = false
			return firstErr
		case *pgproto3.ErrorResponse:
			if firstErr == nil {
				firstErr = fmt.Errorf("end streaming: %w", pgconn.ErrorResponseToPgError(m))
			}
		}
	}
}

// send writes one frontend message. A write blocks only when the server
// stops reading; ctx bounds that through the connection's write deadline.
// After a failed write the stream may hold half a message: Close the Conn.
func (c *Conn) send(ctx context.Context, msg pgproto3.FrontendMessage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	nc := c.pg.Conn()
	if d, ok := ctx.Deadline(); ok {
		nc.SetWriteDeadline(d)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		nc.SetWriteDeadline(time.Now())
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
		nc.SetWriteDeadline(time.Time{})
	}()
	c.pg.Frontend().Send(msg)
	return c.pg.Frontend().Flush()
}

// Timeout reports whether err is ReceiveMessage's deadline passing, after
// which the connection is still usable.
func Timeout(err error) bool {
	return pgconn.Timeout(err) && !errors.Is(err, context.Canceled)
}

// PostgreSQL timestamps count microseconds from 2000-01-01 UTC.
const pgEpochMicros = 946684800 * 1000000

func pgTime(micros int64) time.Time {
	return time.UnixMicro(micros + pgEpochMicros).UTC()
}

func toPGTime(t time.Time) int64 {
	return t.UnixMicro() - pgEpochMicros
}
