package pgoutput

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

const schema = `
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE t_default (id int PRIMARY KEY, name text, note text);
CREATE TABLE t_full (id int, v text, m mood);
ALTER TABLE t_full REPLICA IDENTITY FULL;
CREATE TABLE t_idx (id int NOT NULL, code text NOT NULL, v text);
CREATE UNIQUE INDEX t_idx_code ON t_idx (code);
ALTER TABLE t_idx REPLICA IDENTITY USING INDEX t_idx_code;
CREATE TABLE t_toast (id int PRIMARY KEY, big text, small int);
ALTER TABLE t_toast ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE t_parent (id serial PRIMARY KEY);
CREATE TABLE t_child (id serial PRIMARY KEY, parent_id int REFERENCES t_parent);
CREATE TABLE t_private (id int PRIMARY KEY);
INSERT INTO t_default VALUES (1, 'before', NULL), (2, 'before', NULL);
INSERT INTO t_full VALUES (1, 'old', 'sad');
INSERT INTO t_idx VALUES (1, 'a', 'x'), (2, 'c', 'y');
INSERT INTO t_toast SELECT 1, string_agg(md5(i::text), ''), 0 FROM generate_series(1, 3000) i;
INSERT INTO t_parent DEFAULT VALUES;
INSERT INTO t_child (parent_id) VALUES (1);
CREATE PUBLICATION pub FOR TABLE t_default, t_full, t_idx, t_toast, t_parent, t_child;
`

// TestSnapshotAndDecode follows the checklist's setup (publication, slot with
// an exported snapshot, copy in that snapshot, stream from the consistent
// point) and decodes every kind of change from a real server.
func TestSnapshotAndDecode(t *testing.T) {
	cl := pgtest.Start(t, pgtest.Options{Logical: true})
	cl.Exec(t, "postgres", schema)
	ctx := context.Background()

	c := connectRepl(t, cl.ConnString("postgres"))
	sys, err := c.IdentifySystem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sys.DBName != "postgres" || sys.Timeline != 1 || sys.XLogPos == 0 || sys.SystemID == "" {
		t.Fatalf("identify system = %+v", sys)
	}
	slot, err := c.CreateReplicationSlot(ctx, "s1", "pgoutput", SlotOptions{Snapshot: SnapshotExport})
	if err != nil {
		t.Fatal(err)
	}
	if slot.SlotName != "s1" || slot.OutputPlugin != "pgoutput" || slot.SnapshotName == "" || slot.ConsistentPoint < sys.XLogPos {
		t.Fatalf("slot = %+v (identify %v)", slot, sys.XLogPos)
	}

	s := newSession(t, cl, c)
	// A row committed after the slot: the snapshot must not see it, the
	// stream must carry it.
	s.exec("INSERT INTO t_default VALUES (3, 'after', NULL)")

	countInSnapshot := func() (int, error) {
		tx, err := s.sql.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return 0, err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+slot.SnapshotName+"'"); err != nil {
			return 0, err
		}
		var n int
		err = tx.QueryRow(ctx, "SELECT count(*) FROM t_default").Scan(&n)
		return n, err
	}
	if n, err := countInSnapshot(); err != nil || n != 2 {
		t.Fatalf("rows in exported snapshot = %d, %v; want 2", n, err)
	}
	// The documented caveat: the next command on the slot's connection ends
	// the exported snapshot.
	if _, err := c.IdentifySystem(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := countInSnapshot(); err == nil {
		t.Fatal("exported snapshot still importable after the slot connection ran another command")
	}

	if err := c.StartReplication(ctx, "s1", slot.ConsistentPoint, PluginArgs{ProtoVersion: 2, Publications: []string{"pub"}, Messages: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.IdentifySystem(ctx); !errors.Is(err, ErrStreaming) {
		t.Fatalf("command while streaming: %v, want ErrStreaming", err)
	}

	t.Run("no gap no overlap", func(t *testing.T) {
		msgs := s.step("")
		ins := only[*Insert](msgs)
		if len(ins) != 1 || !slices.Equal(vals(ins[0].Tuple), []string{"3", "after", "NULL"}) {
			t.Fatalf("first inserts after the consistent point: %d (%s)", len(ins), types(msgs))
		}
		begins, commits := only[*Begin](msgs), only[*Commit](msgs)
		if len(begins) != 1 || len(commits) != 1 {
			t.Fatalf("messages %s", types(msgs))
		}
		b, cm := begins[0], commits[0]
		if b.Xid == 0 || b.FinalLSN != cm.CommitLSN || cm.TransactionEndLSN <= cm.CommitLSN || b.CommitTime != cm.CommitTime {
			t.Fatalf("begin %+v commit %+v", b, cm)
		}
		if d := time.Since(cm.CommitTime); d < 0 || d > time.Minute {
			t.Fatalf("commit time %v is %v from now", cm.CommitTime, d)
		}
		r, ok := s.rels.Get(s.relid("t_default"))
		if !ok || r.Namespace != "public" || r.RelationName != "t_default" || r.ReplicaIdentity != ReplicaIdentityDefault || len(r.Columns) != 3 {
			t.Fatalf("relation t_default = %+v", r)
		}
		if !r.Columns[0].IsKey() || r.Columns[1].IsKey() || r.Columns[0].DataType != 23 || r.Columns[1].DataType != 25 || r.Columns[0].TypeModifier != -1 {
			t.Fatalf("t_default columns = %+v", r.Columns)
		}
	})

	t.Run("update delete default identity", func(t *testing.T) {
		msgs := s.step("UPDATE t_default SET name = 'b' WHERE id = 3")
		up := only[*Update](msgs)
		if len(up) != 1 || up[0].OldTupleType != 0 || up[0].OldTuple != nil || !slices.Equal(vals(up[0].NewTuple), []string{"3", "b", "NULL"}) {
			t.Fatalf("update without key change: %+v", up)
		}
		msgs = s.step("UPDATE t_default SET id = 4 WHERE id = 3")
		up = only[*Update](msgs)
		if len(up) != 1 || up[0].OldTupleType != OldTupleKey || !slices.Equal(vals(up[0].OldTuple), []string{"3", "NULL", "NULL"}) || vals(up[0].NewTuple)[0] != "4" {
			t.Fatalf("key update: %+v", up)
		}
		msgs = s.step("DELETE FROM t_default WHERE id = 4")
		del := only[*Delete](msgs)
		if len(del) != 1 || del[0].OldTupleType != OldTupleKey || !slices.Equal(vals(del[0].OldTuple), []string{"4", "NULL", "NULL"}) {
			t.Fatalf("delete: %+v", del)
		}
	})

	t.Run("replica identity full and enum type", func(t *testing.T) {
		msgs := s.step("UPDATE t_full SET v = 'new' WHERE id = 1")
		ty := only[*TypeInfo](msgs)
		if len(ty) != 1 || ty[0].Name != "mood" || ty[0].Namespace != "public" || ty[0].DataType == 0 {
			t.Fatalf("type messages: %+v (%s)", ty, types(msgs))
		}
		r, _ := s.rels.Get(s.relid("t_full"))
		if r == nil || r.ReplicaIdentity != ReplicaIdentityFull || r.Columns[2].DataType != ty[0].DataType {
			t.Fatalf("relation t_full = %+v", r)
		}
		for _, col := range r.Columns {
			if !col.IsKey() {
				t.Fatalf("REPLICA IDENTITY FULL column %s not flagged key", col.Name)
			}
		}
		up := only[*Update](msgs)
		if len(up) != 1 || up[0].OldTupleType != OldTupleFull || !slices.Equal(vals(up[0].OldTuple), []string{"1", "old", "sad"}) || !slices.Equal(vals(up[0].NewTuple), []string{"1", "new", "sad"}) {
			t.Fatalf("full update: %+v", up)
		}
		del := only[*Delete](s.step("DELETE FROM t_full"))
		if len(del) != 1 || del[0].OldTupleType != OldTupleFull || !slices.Equal(vals(del[0].OldTuple), []string{"1", "new", "sad"}) {
			t.Fatalf("full delete: %+v", del)
		}
	})

	t.Run("replica identity using index", func(t *testing.T) {
		up := only[*Update](s.step("UPDATE t_idx SET v = 'z' WHERE code = 'a'"))
		if len(up) != 1 || up[0].OldTupleType != 0 {
			t.Fatalf("update keeping the index key: %+v", up)
		}
		r, _ := s.rels.Get(s.relid("t_idx"))
		if r == nil || r.ReplicaIdentity != ReplicaIdentityIndex || r.Columns[0].IsKey() || !r.Columns[1].IsKey() || r.Columns[2].IsKey() {
			t.Fatalf("relation t_idx = %+v", r)
		}
		up = only[*Update](s.step("UPDATE t_idx SET code = 'b' WHERE code = 'a'"))
		if len(up) != 1 || up[0].OldTupleType != OldTupleKey || !slices.Equal(vals(up[0].OldTuple), []string{"NULL", "a", "NULL"}) || !slices.Equal(vals(up[0].NewTuple), []string{"1", "b", "z"}) {
			t.Fatalf("index key update: %+v", up)
		}
		del := only[*Delete](s.step("DELETE FROM t_idx WHERE code = 'c'"))
		if len(del) != 1 || del[0].OldTupleType != OldTupleKey || !slices.Equal(vals(del[0].OldTuple), []string{"NULL", "c", "NULL"}) {
			t.Fatalf("index delete: %+v", del)
		}
	})

	t.Run("unchanged toast", func(t *testing.T) {
		up := only[*Update](s.step("UPDATE t_toast SET small = small + 1"))
		if len(up) != 1 || !slices.Equal(vals(up[0].NewTuple), []string{"1", "TOAST", "1"}) || !up[0].NewTuple[1].IsUnchanged() {
			t.Fatalf("toast update: %+v", up)
		}
		up = only[*Update](s.step("UPDATE t_toast SET big = big || 'x'"))
		if len(up) != 1 || len(up[0].NewTuple[1].Data) != 3000*32+1 {
			t.Fatalf("toast value rewritten: %d updates", len(up))
		}
	})

	t.Run("nulls and savepoints", func(t *testing.T) {
		msgs := s.step(`BEGIN;
			INSERT INTO t_default VALUES (20, NULL, '');
			SAVEPOINT a; INSERT INTO t_default VALUES (21, 'gone', NULL); ROLLBACK TO SAVEPOINT a;
			SAVEPOINT b; INSERT INTO t_default VALUES (22, 'kept', NULL); RELEASE SAVEPOINT b;
			COMMIT`)
		ins := only[*Insert](msgs)
		if len(ins) != 2 || len(only[*Begin](msgs)) != 1 || len(only[*Commit](msgs)) != 1 {
			t.Fatalf("savepoint transaction: %s", types(msgs))
		}
		if got := vals(ins[0].Tuple); !slices.Equal(got, []string{"20", "NULL", ""}) || !ins[0].Tuple[1].IsNull() || ins[0].Tuple[2].Kind != TupleText {
			t.Fatalf("null/empty insert: %q", got)
		}
		if got := vals(ins[1].Tuple); got[0] != "22" {
			t.Fatalf("second insert %q, want 22 (21 was rolled back)", got)
		}
	})

	t.Run("truncate", func(t *testing.T) {
		msgs := s.step("TRUNCATE t_parent RESTART IDENTITY CASCADE")
		tr := only[*Truncate](msgs)
		if len(tr) != 1 || !tr[0].Cascade() || !tr[0].RestartIdentity() {
			t.Fatalf("truncate: %+v (%s)", tr, types(msgs))
		}
		want := []uint32{s.relid("t_parent"), s.relid("t_child")}
		got := slices.Clone(tr[0].RelationIDs)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("truncated %v, want %v", got, want)
		}
		tr = only[*Truncate](s.step("TRUNCATE t_default"))
		if len(tr) != 1 || tr[0].Options != 0 || len(tr[0].RelationIDs) != 1 {
			t.Fatalf("plain truncate: %+v", tr)
		}
	})

	t.Run("logical messages", func(t *testing.T) {
		msgs := s.step(`BEGIN;
			INSERT INTO t_default VALUES (30, 'm', NULL);
			SELECT pg_logical_emit_message(true, 'tx', 'hello'::bytea);
			SELECT pg_logical_emit_message(false, 'ntx', '\x00ff'::bytea);
			COMMIT;
			BEGIN; SELECT pg_logical_emit_message(false, 'aborted', 'still sent'); ROLLBACK;`)
		ms := only[*Message](msgs)
		if len(ms) != 3 {
			t.Fatalf("messages: %s", types(msgs))
		}
		// The non-transactional one is sent at once, before the
		// transaction it was emitted in.
		if ms[0].Prefix != "ntx" || ms[0].Transactional || !bytes.Equal(ms[0].Content, []byte{0, 0xff}) || ms[0].LSN == 0 {
			t.Fatalf("non-transactional message %+v", ms[0])
		}
		if ms[1].Prefix != "tx" || !ms[1].Transactional || string(ms[1].Content) != "hello" {
			t.Fatalf("transactional message %+v", ms[1])
		}
		if ms[2].Prefix != "aborted" || ms[2].Transactional || string(ms[2].Content) != "still sent" {
			t.Fatalf("message of aborted transaction %+v", ms[2])
		}
		// (A Relation may come again after the truncate above.)
		msgs = slices.DeleteFunc(msgs, func(m ProtocolMessage) bool { return m.Type() == TypeRelation })
		if types(msgs) != "Message Begin Insert Message Commit Message " {
			t.Fatalf("order: %s", types(msgs))
		}
	})

	t.Run("schema change", func(t *testing.T) {
		msgs := s.step("ALTER TABLE t_default ADD COLUMN extra int; INSERT INTO t_default VALUES (40, 'x', NULL, 7)")
		rels := only[*Relation](msgs)
		if len(rels) != 1 {
			t.Fatalf("relation messages after ALTER: %s", types(msgs))
		}
		// s.rels already holds the new one; diff against a fresh cache of
		// the old description.
		set := NewRelationSet()
		set.Add(&Relation{RelationID: rels[0].RelationID, Namespace: "public", RelationName: "t_default", ReplicaIdentity: 'd',
			Columns: rels[0].Columns[:3]})
		d := set.Add(rels[0])
		if !d.OnlyAdded() || len(d.Added) != 1 || d.Added[0].Name != "extra" || d.Added[0].DataType != 23 {
			t.Fatalf("diff = %+v", d)
		}
		ins := only[*Insert](msgs)
		if len(ins) != 1 || !slices.Equal(vals(ins[0].Tuple), []string{"40", "x", "NULL", "7"}) {
			t.Fatalf("insert after ALTER: %+v", ins)
		}
		msgs = s.step("ALTER TABLE t_default ALTER COLUMN extra TYPE bigint; INSERT INTO t_default VALUES (41, 'y', NULL, 8)")
		old, _ := set.Get(rels[0].RelationID)
		rels = only[*Relation](msgs)
		if len(rels) != 1 {
			t.Fatalf("relation messages after type change: %s", types(msgs))
		}
		d = DiffRelations(old, rels[0])
		if d.OnlyAdded() || len(d.Changed) != 1 || d.Changed[0].New.DataType != 20 {
			t.Fatalf("type change diff = %+v", d)
		}
	})

	t.Run("origin", func(t *testing.T) {
		msgs := s.step(`SELECT pg_replication_origin_create('upstream');
			SELECT pg_replication_origin_session_setup('upstream');
			BEGIN;
			SELECT pg_replication_origin_xact_setup('0/ABCDEF', now());
			INSERT INTO t_default VALUES (60, 'o', NULL, NULL);
			COMMIT;
			SELECT pg_replication_origin_session_reset();`)
		or := only[*Origin](msgs)
		if len(or) != 1 || or[0].Name != "upstream" || or[0].CommitLSN != 0xABCDEF {
			t.Fatalf("origin: %+v (%s)", or, types(msgs))
		}
		msgs = slices.DeleteFunc(msgs, func(m ProtocolMessage) bool { return m.Type() == TypeRelation })
		if types(msgs) != "Begin Origin Insert Commit " {
			t.Fatalf("order: %s", types(msgs))
		}
	})

	t.Run("proto v1 and binary", func(t *testing.T) {
		c1 := connectRepl(t, cl.ConnString("postgres"))
		sl, err := c1.CreateReplicationSlot(ctx, "s_v1", "pgoutput", SlotOptions{Temporary: true, Snapshot: SnapshotNothing})
		if err != nil {
			t.Fatal(err)
		}
		if sl.SnapshotName != "" {
			t.Fatalf("snapshot %q with NOEXPORT_SNAPSHOT", sl.SnapshotName)
		}
		if err := c1.StartReplication(ctx, "s_v1", sl.ConsistentPoint, PluginArgs{ProtoVersion: 1, Publications: []string{"pub"}, Messages: true, Binary: true}); err != nil {
			t.Fatal(err)
		}
		s1 := &session{t: t, c: c1, sql: s.sql, rels: NewRelationSet()}
		msgs := s1.step("INSERT INTO t_default VALUES (50, 'bin', NULL, 9)")
		ins := only[*Insert](msgs)
		if len(ins) != 1 || ins[0].Tuple[0].Kind != TupleBinary || !bytes.Equal(ins[0].Tuple[0].Data, []byte{0, 0, 0, 50}) || ins[0].Tuple[2].Kind != TupleNull {
			t.Fatalf("binary insert: %+v", ins)
		}
		if err := c1.EndStreaming(ctx); err != nil {
			t.Fatal(err)
		}
		// Back in command mode on the same connection.
		if _, err := c1.IdentifySystem(ctx); err != nil {
			t.Fatalf("identify after EndStreaming: %v", err)
		}
	})

	t.Run("errors keep the connection usable", func(t *testing.T) {
		c2 := connectRepl(t, cl.ConnString("postgres"))
		err := c2.StartReplication(ctx, "no_such_slot", 0, PluginArgs{Publications: []string{"pub"}})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42704" {
			t.Fatalf("start on a missing slot: %v", err)
		}
		if _, err := c2.IdentifySystem(ctx); err != nil {
			t.Fatalf("identify after error: %v", err)
		}
		if err := c2.DropReplicationSlot(ctx, "no_such_slot", false); !errors.As(err, &pgErr) {
			t.Fatalf("drop of missing slot: %v", err)
		}
		if _, err := c2.CreateReplicationSlot(ctx, "s_tmp", "pgoutput", SlotOptions{Snapshot: "bogus"}); err == nil {
			t.Fatal("bogus snapshot action accepted")
		}
	})
}
