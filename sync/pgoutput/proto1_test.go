package pgoutput

import (
	"context"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

func TestArgsFor(t *testing.T) {
	for _, c := range []struct {
		version         int
		proto           int
		stream, message bool
	}{
		{120017, 1, false, false},
		{130013, 1, false, false},
		{140000, 2, true, true},
		{150008, 2, true, true},
		{170002, 2, true, true},
	} {
		a := ArgsFor(c.version, "pub")
		if a.ProtoVersion != c.proto || a.Streaming != c.stream || a.Messages != c.message || len(a.Publications) != 1 {
			t.Errorf("ArgsFor(%d) = %+v", c.version, a)
		}
		if _, err := a.options(); err != nil {
			t.Errorf("ArgsFor(%d).options(): %v", c.version, err)
		}
	}
	if _, err := (PluginArgs{ProtoVersion: 1, Publications: []string{"p"}, Streaming: true}).options(); err == nil {
		t.Error("proto_version 1 with streaming accepted")
	}
}

// TestProto1 streams from the PostgreSQL here with the options a 12 or 13
// source gets (ArgsFor below 14: proto_version 1, no streaming, no
// messages): changes carry no xid, a transaction far beyond
// logical_decoding_work_mem arrives whole at its commit, and the server's
// keepalives still carry its position past WAL that publishes nothing, which
// is all the follower has to advance on without messages.
func TestProto1(t *testing.T) {
	cl := pgtest.Start(t, pgtest.Options{Logical: true})
	cl.Exec(t, "postgres", `CREATE TABLE big (id int PRIMARY KEY, pad text);
		CREATE TABLE full_ri (a int, b text);
		ALTER TABLE full_ri REPLICA IDENTITY FULL;
		INSERT INTO full_ri VALUES (1, 'x');
		CREATE PUBLICATION pub FOR TABLE big, full_ri`)
	ctx := context.Background()
	c := connectRepl(t, cl.ConnString("postgres")+"&logical_decoding_work_mem=64kB")
	slot, err := c.CreateReplicationSlot(ctx, "s", "pgoutput", SlotOptions{Temporary: true, Snapshot: SnapshotNothing})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartReplication(ctx, "s", slot.ConsistentPoint, ArgsFor(130000, "pub")); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, cl, c)
	s.exec(`BEGIN;
		INSERT INTO big SELECT i, repeat('p', 200) FROM generate_series(1, 3000) i;
		UPDATE big SET pad = 'q' WHERE id <= 10;
		DELETE FROM big WHERE id > 2990;
		UPDATE full_ri SET b = 'y';
		SELECT pg_logical_emit_message(true, 'tx', 'inside');
		SELECT pg_logical_emit_message(false, 'nontx', 'outside');
		COMMIT;
		TRUNCATE big;`)

	var msgs []ProtocolMessage
	deadline := time.Now().Add(60 * time.Second)
	for commits := 0; commits < 2; {
		m := s.next(deadline)
		if _, ok := m.(*Commit); ok {
			commits++
		}
		msgs = append(msgs, m)
	}
	if got := types(msgs); len(only[*Begin](msgs)) != 2 || len(only[*Truncate](msgs)) != 1 {
		t.Fatalf("messages: %s", got)
	}
	for _, m := range msgs {
		switch m := m.(type) {
		case *StreamStart, *StreamCommit, *Message:
			t.Fatalf("%s under proto_version 1 without messages", m.Type())
		case *Relation:
			if m.Xid != 0 {
				t.Errorf("relation %s with xid %d", m.RelationName, m.Xid)
			}
		case *Insert:
			if m.Xid != 0 {
				t.Fatalf("insert with xid %d", m.Xid)
			}
		case *Update:
			if m.Xid != 0 {
				t.Fatalf("update with xid %d", m.Xid)
			}
		case *Delete:
			if m.Xid != 0 {
				t.Fatalf("delete with xid %d", m.Xid)
			}
		}
	}
	ins, up, del := only[*Insert](msgs), only[*Update](msgs), only[*Delete](msgs)
	if len(ins) != 3000 || len(up) != 11 || len(del) != 10 {
		t.Fatalf("%d inserts, %d updates, %d deletes; want 3000, 11, 10", len(ins), len(up), len(del))
	}
	if full := up[len(up)-1]; full.OldTupleType != OldTupleFull || vals(full.OldTuple)[1] != "x" || vals(full.NewTuple)[1] != "y" {
		t.Errorf("REPLICA IDENTITY FULL update: %+v", full)
	}
	s.ack(s.lastEnd)

	// WAL that publishes nothing: keepalives must carry the server past it.
	var at string
	if err := s.sql.QueryRow(ctx, "SELECT pg_logical_emit_message(false, 'barrier', 'b')::text").Scan(&at); err != nil {
		t.Fatal(err)
	}
	lsn, err := ParseLSN(at)
	if err != nil {
		t.Fatal(err)
	}
	for {
		rctx, cancel := context.WithDeadline(ctx, time.Now().Add(30*time.Second))
		msg, err := c.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			t.Fatalf("no keepalive past %s: %v", lsn, err)
		}
		if x, ok := msg.(*XLogData); ok {
			t.Fatalf("data after the workload: %x", x.Data)
		}
		if k, ok := msg.(*PrimaryKeepalive); ok {
			// The function returns the end of its record: the server's
			// sent position reaches it exactly.
			if k.ServerWALEnd >= lsn {
				break
			}
			s.ack(k.ServerWALEnd)
		}
	}
}
