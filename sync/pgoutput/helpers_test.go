package pgoutput

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// session is a test's replication stream: a Conn in streaming mode with its
// decoder, plus a plain SQL connection to drive the workload.
type session struct {
	t       *testing.T
	c       *Conn
	sql     *pgx.Conn
	dec     Decoder
	rels    *RelationSet
	lastEnd LSN // end of the last transaction seen, acked on request
	barrier int
	// seenReply counts keepalives that asked for a reply.
	seenReply int
}

func newSession(t *testing.T, cl *pgtest.Cluster, c *Conn) *session {
	return &session{t: t, c: c, sql: cl.Connect(t, "postgres"), rels: NewRelationSet()}
}

func (s *session) exec(sql string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := s.sql.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		s.t.Fatalf("exec %.200s: %v", sql, err)
	}
}

// step runs sql, then a non-transactional barrier message, and returns the
// decoded messages that came before the barrier. Decoding follows WAL order,
// so everything sql committed arrives first.
func (s *session) step(sql string) []ProtocolMessage {
	s.t.Helper()
	if sql != "" {
		s.exec(sql)
	}
	s.barrier++
	tag := fmt.Sprint(s.barrier)
	s.exec(fmt.Sprintf("SELECT pg_logical_emit_message(false, 'barrier', '%s')", tag))
	var out []ProtocolMessage
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := s.next(deadline)
		if bm, ok := m.(*Message); ok && bm.Prefix == "barrier" {
			if string(bm.Content) == tag {
				return out
			}
			continue
		}
		out = append(out, m)
	}
}

// next returns the next decoded pgoutput message, answering keepalives.
func (s *session) next(deadline time.Time) ProtocolMessage {
	s.t.Helper()
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		msg, err := s.c.ReceiveMessage(ctx)
		cancel()
		if err != nil {
			s.t.Fatalf("receive: %v", err)
		}
		if os.Getenv("PGOUTPUT_DEBUG") != "" {
			s.t.Logf("%s %T %+v", time.Now().Format("15:04:05.000"), msg, msg)
		}
		switch msg := msg.(type) {
		case *PrimaryKeepalive:
			if msg.ReplyRequested {
				s.seenReply++
				s.ack(s.lastEnd)
			}
		case *XLogData:
			inStream, _ := s.dec.InStream()
			m, err := s.dec.Decode(msg.Data)
			if err != nil {
				s.t.Fatalf("decode %x: %v", msg.Data, err)
			}
			capture(s.t, m, msg.Data, inStream)
			switch m := m.(type) {
			case *Commit:
				s.lastEnd = m.TransactionEndLSN
			case *StreamCommit:
				s.lastEnd = m.TransactionEndLSN
			case *Relation:
				s.rels.Add(m)
			}
			return m
		}
	}
}

func (s *session) ack(l LSN) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.c.SendStandbyStatus(ctx, StandbyStatus{Write: l, Flush: l, Apply: l}); err != nil {
		s.t.Fatalf("standby status: %v", err)
	}
}

// relid returns the OID of a table as the stream's Relation messages named it.
func (s *session) relid(name string) uint32 {
	s.t.Helper()
	var id uint32
	if err := s.sql.QueryRow(context.Background(), "SELECT $1::regclass::oid", name).Scan(&id); err != nil {
		s.t.Fatalf("oid of %s: %v", name, err)
	}
	return id
}

func only[T ProtocolMessage](msgs []ProtocolMessage) []T {
	var out []T
	for _, m := range msgs {
		if v, ok := m.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// types lists message types, for failure messages.
func types(msgs []ProtocolMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Type().String())
		b.WriteByte(' ')
	}
	return b.String()
}

// vals renders a tuple as text: NULL, TOAST (unchanged) or the value.
func vals(tu Tuple) []string {
	out := make([]string, len(tu))
	for i, c := range tu {
		switch c.Kind {
		case TupleNull:
			out[i] = "NULL"
		case TupleUnchanged:
			out[i] = "TOAST"
		default:
			out[i] = string(c.Data)
		}
	}
	return out
}

func connectRepl(t *testing.T, connString string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// capture writes the first real message of each kind to testdata/fixtures
// when PGOUTPUT_CAPTURE=1, for the decoder's fixture tests and fuzz seeds.
func capture(t *testing.T, m ProtocolMessage, data []byte, inStream bool) {
	if os.Getenv("PGOUTPUT_CAPTURE") != "1" {
		return
	}
	name := strings.ToLower(m.Type().String())
	switch m := m.(type) {
	case *Update:
		name += "_" + oldKind(m.OldTupleType)
		for _, c := range m.NewTuple {
			if c.IsUnchanged() {
				name += "_toast"
				break
			}
		}
	case *Delete:
		name += "_" + oldKind(m.OldTupleType)
	case *Message:
		if m.Prefix == "barrier" {
			return
		}
		name += fmt.Sprintf("_tx%v", m.Transactional)
	case *StreamAbort:
		if m.Xid != m.SubXid {
			name += "_sub"
		}
	}
	if inStream {
		name = "stream_" + name
	}
	p := filepath.Join("testdata", "fixtures", name+".hex")
	if _, err := os.Stat(p); err == nil {
		return
	}
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(hex.EncodeToString(data)+"\n"), 0o644); err != nil {
		t.Fatalf("capture: %v", err)
	}
}

func oldKind(k byte) string {
	switch k {
	case OldTupleKey:
		return "key"
	case OldTupleFull:
		return "full"
	}
	return "none"
}
