package pgoutput

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// TestStreamingLargeTransactions checks protocol 2 streaming with a 64kB
// decoding budget: a large transaction arrives in StreamStart/StreamStop
// segments and a StreamCommit, a rolled-back subtransaction inside it as a
// StreamAbort for the subxact, and a large aborted transaction as a
// StreamAbort for the whole.
func TestStreamingLargeTransactions(t *testing.T) {
	cl := pgtest.Start(t, pgtest.Options{Logical: true})
	cl.Exec(t, "postgres", `CREATE TABLE big (id int PRIMARY KEY, pad text);
		CREATE PUBLICATION pub FOR TABLE big`)
	ctx := context.Background()
	// logical_decoding_work_mem is a user setting: set it for this
	// walsender through the startup packet.
	c := connectRepl(t, cl.ConnString("postgres")+"&logical_decoding_work_mem=64kB")
	slot, err := c.CreateReplicationSlot(ctx, "s", "pgoutput", SlotOptions{Temporary: true, Snapshot: SnapshotNothing})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartReplication(ctx, "s", slot.ConsistentPoint, PluginArgs{Publications: []string{"pub"}, Messages: true, Streaming: true}); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, cl, c)

	// replay applies a stream the way the apply side must: changes buffered
	// per (sub)transaction in arrival order, subtransaction aborts cutting
	// off from that subxact's first change, applied at StreamCommit.
	type change struct {
		xid uint32
		id  string
	}
	replay := func(msgs []ProtocolMessage) (committed []string, segments int, aborts []*StreamAbort, commit *StreamCommit) {
		t.Helper()
		var buf []change
		var top uint32
		in := false
		for _, m := range msgs {
			switch m := m.(type) {
			case *StreamStart:
				if in {
					t.Fatal("nested StreamStart")
				}
				if top == 0 {
					top = m.Xid
					if !m.FirstSegment {
						t.Fatal("first segment not flagged FirstSegment")
					}
				} else if m.Xid != top || m.FirstSegment {
					t.Fatalf("later segment %+v for top xid %d", m, top)
				}
				in = true
				segments++
			case *StreamStop:
				in = false
			case *Insert:
				if !in || m.Xid == 0 {
					t.Fatalf("insert outside a segment or without xid: %+v", m)
				}
				buf = append(buf, change{m.Xid, string(m.Tuple[0].Data)})
			case *StreamAbort:
				if in || m.Xid != top {
					t.Fatalf("abort %+v in=%v top=%d", m, in, top)
				}
				aborts = append(aborts, m)
				for i, ch := range buf {
					if m.SubXid == m.Xid || ch.xid == m.SubXid {
						buf = buf[:i]
						break
					}
				}
			case *StreamCommit:
				if in || m.Xid != top {
					t.Fatalf("commit %+v in=%v top=%d", m, in, top)
				}
				commit = m
				for _, ch := range buf {
					committed = append(committed, ch.id)
				}
			case *Begin, *Commit:
				t.Fatalf("%s in a streamed transaction", m.Type())
			}
		}
		return committed, segments, aborts, commit
	}

	t.Run("commit with aborted subtransaction", func(t *testing.T) {
		msgs := s.step(`BEGIN;
			INSERT INTO big SELECT i, repeat('x', 100) FROM generate_series(1, 3000) i;
			SAVEPOINT sp;
			INSERT INTO big SELECT i, repeat('y', 100) FROM generate_series(3001, 6000) i;
			ROLLBACK TO SAVEPOINT sp;
			INSERT INTO big SELECT i, repeat('z', 100) FROM generate_series(6001, 6010) i;
			COMMIT`)
		committed, segments, aborts, commit := replay(msgs)
		if segments < 2 {
			t.Fatalf("%d stream segments; want several with 64kB work mem (%d messages)", segments, len(msgs))
		}
		if commit == nil || commit.TransactionEndLSN <= commit.CommitLSN || commit.CommitTime.IsZero() {
			t.Fatalf("stream commit %+v", commit)
		}
		if len(aborts) != 1 || aborts[0].SubXid == aborts[0].Xid {
			t.Fatalf("subtransaction aborts %+v", aborts)
		}
		if len(committed) != 3010 || committed[0] != "1" || committed[3000] != "6001" {
			t.Fatalf("replayed %d rows", len(committed))
		}
		if in, _ := s.dec.InStream(); in {
			t.Fatal("decoder still in a stream")
		}
	})

	t.Run("every change kind in a stream", func(t *testing.T) {
		s.exec(`CREATE TYPE color AS ENUM ('red');
			CREATE TABLE colored (id int PRIMARY KEY, c color);
			ALTER PUBLICATION pub ADD TABLE colored`)
		msgs := s.step(`BEGIN;
			INSERT INTO big SELECT i, repeat('s', 100) FROM generate_series(7001, 10000) i;
			INSERT INTO colored VALUES (1, 'red');
			UPDATE big SET pad = 'u' WHERE id = 7001;
			DELETE FROM big WHERE id = 7002;
			SELECT pg_logical_emit_message(true, 'in-stream', 'x');
			TRUNCATE colored;
			COMMIT`)
		var top uint32
		kinds := map[MessageType]int{}
		for _, m := range msgs {
			var xid uint32
			switch m := m.(type) {
			case *StreamStart:
				top = m.Xid
				continue
			case *Insert:
				xid = m.Xid
			case *Update:
				xid = m.Xid
			case *Delete:
				xid = m.Xid
			case *Truncate:
				xid = m.Xid
			case *Message:
				xid = m.Xid
			case *Relation:
				xid = m.Xid
			case *TypeInfo:
				xid = m.Xid
			default:
				continue
			}
			kinds[m.Type()]++
			if xid != top || xid == 0 {
				t.Fatalf("%s in stream of %d carries xid %d", m.Type(), top, xid)
			}
		}
		for _, k := range []MessageType{TypeInsert, TypeUpdate, TypeDelete, TypeTruncate, TypeMessage, TypeRelation, TypeType} {
			if kinds[k] == 0 {
				t.Fatalf("no streamed %s: %s", k, types(msgs))
			}
		}
		if len(only[*StreamCommit](msgs)) != 1 {
			t.Fatalf("no stream commit: %s", types(msgs))
		}
	})

	t.Run("aborted large transaction", func(t *testing.T) {
		msgs := s.step(`BEGIN;
			INSERT INTO big SELECT i, repeat('a', 100) FROM generate_series(10001, 13000) i;
			ROLLBACK`)
		committed, segments, aborts, commit := replay(msgs)
		if segments == 0 || commit != nil || len(committed) != 0 {
			t.Fatalf("aborted transaction: %d segments, commit %+v", segments, commit)
		}
		if len(aborts) != 1 || aborts[0].SubXid != aborts[0].Xid {
			t.Fatalf("aborts %+v", aborts)
		}
	})

	t.Run("server error while streaming", func(t *testing.T) {
		c2 := connectRepl(t, cl.ConnString("postgres"))
		sl, err := c2.CreateReplicationSlot(ctx, "s_err", "pgoutput", SlotOptions{Temporary: true, Snapshot: SnapshotNothing})
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.StartReplication(ctx, "s_err", sl.ConsistentPoint, PluginArgs{Publications: []string{"no_such_pub"}}); err != nil {
			t.Fatal(err)
		}
		s.exec("INSERT INTO big VALUES (30000, 'x')")
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var pgErr *pgconn.PgError
		for {
			_, err := c2.ReceiveMessage(rctx)
			if err == nil {
				continue
			}
			if !errors.As(err, &pgErr) || pgErr.Code != "42704" {
				t.Fatalf("receive with a missing publication: %v", err)
			}
			break
		}
		if _, err := c2.IdentifySystem(ctx); err != nil {
			t.Fatalf("command after a stream error: %v", err)
		}
	})

	t.Run("walsender terminated", func(t *testing.T) {
		c3 := connectRepl(t, cl.ConnString("postgres"))
		sl, err := c3.CreateReplicationSlot(ctx, "s_term", "pgoutput", SlotOptions{Temporary: true, Snapshot: SnapshotNothing})
		if err != nil {
			t.Fatal(err)
		}
		if err := c3.StartReplication(ctx, "s_term", sl.ConsistentPoint, PluginArgs{Publications: []string{"pub"}}); err != nil {
			t.Fatal(err)
		}
		s.exec(fmt.Sprintf("SELECT pg_terminate_backend(%d)", c3.PgConn().PID()))
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for {
			_, err := c3.ReceiveMessage(rctx)
			if err == nil {
				continue
			}
			if Timeout(err) {
				t.Fatal("no error 30s after the walsender was terminated")
			}
			break
		}
		if _, err := c3.ReceiveMessage(ctx); err == nil {
			t.Fatal("receive on a dead connection succeeded")
		}
	})

	t.Run("small transactions are not streamed", func(t *testing.T) {
		msgs := s.step("INSERT INTO big VALUES (20000, 'small')")
		if len(only[*Begin](msgs)) == 0 || len(only[*StreamStart](msgs)) != 0 {
			t.Fatalf("small transaction: %s", types(msgs))
		}
	})
}

// TestStandbyStatus checks that acknowledged positions reach the server as
// sent, that confirmed_flush_lsn follows the flush position, and that
// keepalives asking for a reply come when wal_sender_timeout is short and
// answering them keeps the connection alive.
func TestStandbyStatus(t *testing.T) {
	cl := pgtest.Start(t, pgtest.Options{Logical: true})
	cl.Exec(t, "postgres", `CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t`)
	ctx := context.Background()
	c := connectRepl(t, cl.ConnString("postgres")+"&wal_sender_timeout=2s")
	slot, err := c.CreateReplicationSlot(ctx, "s", "pgoutput", SlotOptions{Snapshot: SnapshotNothing})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartReplication(ctx, "s", slot.ConsistentPoint, PluginArgs{Publications: []string{"pub"}, Messages: true}); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, cl, c)

	var commitEnd LSN
	s.exec("INSERT INTO t VALUES (1)")
	for commitEnd == 0 {
		if cm, ok := s.next(time.Now().Add(30 * time.Second)).(*Commit); ok {
			commitEnd = cm.TransactionEndLSN
		}
	}

	positions := func() (w, f, r *LSN) {
		t.Helper()
		err := s.sql.QueryRow(ctx, "SELECT write_lsn, flush_lsn, replay_lsn FROM pg_stat_replication WHERE pid = $1", c.PgConn().PID()).Scan(&w, &f, &r)
		if err != nil {
			t.Fatalf("pg_stat_replication: %v", err)
		}
		return
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	// Write only: flush and apply stay unset, not copied from write.
	if err := c.SendStandbyStatus(ctx, StandbyStatus{Write: commitEnd}); err != nil {
		t.Fatal(err)
	}
	waitFor("write_lsn", func() bool { w, _, _ := positions(); return w != nil && *w == commitEnd })
	if _, f, r := positions(); f != nil || r != nil {
		t.Fatalf("flush %v replay %v after a write-only status; zero positions must be sent as zero", f, r)
	}
	var confirmed LSN
	if err := s.sql.QueryRow(ctx, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 's'").Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	if confirmed >= commitEnd {
		t.Fatalf("confirmed_flush_lsn %v moved to %v without a flush ack", confirmed, commitEnd)
	}

	if err := c.SendStandbyStatus(ctx, StandbyStatus{Write: commitEnd, Flush: commitEnd, Apply: commitEnd}); err != nil {
		t.Fatal(err)
	}
	waitFor("confirmed_flush_lsn", func() bool {
		var l LSN
		if err := s.sql.QueryRow(ctx, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 's'").Scan(&l); err != nil {
			t.Fatal(err)
		}
		return l == commitEnd
	})
	if _, f, r := positions(); f == nil || *f != commitEnd || r == nil || *r != commitEnd {
		t.Fatalf("flush %v replay %v, want %v", f, r, commitEnd)
	}

	// Idle for longer than wal_sender_timeout: the server asks for replies
	// (at half the timeout) and, answered, keeps the connection.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rctx, cancel := context.WithDeadline(ctx, deadline)
		msg, err := c.ReceiveMessage(rctx)
		cancel()
		if Timeout(err) {
			break
		}
		if err != nil {
			t.Fatalf("connection lost while answering keepalives: %v", err)
		}
		if k, ok := msg.(*PrimaryKeepalive); ok && k.ReplyRequested {
			s.seenReply++
			if k.ServerWALEnd < commitEnd || time.Since(k.ServerTime) > time.Minute {
				t.Fatalf("keepalive %+v", k)
			}
			s.ack(commitEnd)
		}
	}
	if s.seenReply == 0 {
		t.Fatal("no keepalive asked for a reply within 5s at wal_sender_timeout=2s")
	}
	s.exec("INSERT INTO t VALUES (2)")
	if ins := only[*Insert](s.step("")); len(ins) != 1 {
		t.Fatalf("stream after keepalives: %d inserts", len(ins))
	}

	// A short deadline is a timeout, not a broken connection.
	// (Keepalives come every second here; retry until a window is quiet.)
	for try := 0; ; try++ {
		rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		msg, err := c.ReceiveMessage(rctx)
		cancel()
		if err == nil && try < 20 {
			if k, ok := msg.(*PrimaryKeepalive); ok && k.ReplyRequested {
				s.ack(commitEnd)
			}
			continue
		}
		if !Timeout(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("receive past deadline: %v", err)
		}
		break
	}
	rctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.ReceiveMessage(rctx); Timeout(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("receive with canceled ctx: %v", err)
	}
	if ins := only[*Insert](s.step("INSERT INTO t VALUES (3)")); len(ins) != 1 {
		t.Fatalf("stream after timeouts: %d inserts", len(ins))
	}

	// Leave streaming and drop the slot on the same connection.
	if err := c.EndStreaming(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.DropReplicationSlot(ctx, "s", true); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.sql.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots").Scan(&n); err != nil || n != 0 {
		t.Fatalf("slots after drop: %d, %v", n, err)
	}
}

// TestUseSnapshot checks USE_SNAPSHOT: the slot's snapshot becomes that of
// the replication connection's own open transaction.
func TestUseSnapshot(t *testing.T) {
	cl := pgtest.Start(t, pgtest.Options{Logical: true})
	cl.Exec(t, "postgres", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
	ctx := context.Background()
	c := connectRepl(t, cl.ConnString("postgres"))
	if _, err := c.PgConn().Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateReplicationSlot(ctx, "s", "pgoutput", SlotOptions{Temporary: true, Snapshot: SnapshotUse}); err != nil {
		t.Fatal(err)
	}
	cl.Exec(t, "postgres", "INSERT INTO t VALUES (2)")
	res, err := c.PgConn().Exec(ctx, "SELECT count(*) FROM t").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res[0].Rows[0][0]); got != "1" {
		t.Fatalf("rows in the slot's snapshot = %s, want 1", got)
	}
	if _, err := c.PgConn().Exec(ctx, "COMMIT").ReadAll(); err != nil {
		t.Fatal(err)
	}
}
