package pgoutput_test

import (
	"context"
	"time"

	"github.com/pgtwin/pgtwin/sync/pgoutput"
)

// Example shows the shape of a consumer: publication first, then the slot
// with an exported snapshot, the initial copy in that snapshot on other
// connections, then streaming from the consistent point, acknowledging only
// what the target made durable.
func Example() {
	ctx := context.Background()
	conn, err := pgoutput.Connect(ctx, "postgres://replicator@source/app")
	if err != nil {
		return
	}
	defer conn.Close(ctx)

	slot, err := conn.CreateReplicationSlot(ctx, "pgtwin", "pgoutput", pgoutput.SlotOptions{Snapshot: pgoutput.SnapshotExport})
	if err != nil {
		return
	}
	// Copy every table on other connections in
	// SET TRANSACTION SNAPSHOT slot.SnapshotName, and finish, before conn
	// runs anything else.

	err = conn.StartReplication(ctx, "pgtwin", slot.ConsistentPoint, pgoutput.PluginArgs{
		ProtoVersion: 2, Publications: []string{"pgtwin"}, Messages: true, Streaming: true,
	})
	if err != nil {
		return
	}
	var (
		dec     pgoutput.Decoder
		rels    = pgoutput.NewRelationSet()
		durable = slot.ConsistentPoint // end LSN of the last transaction committed on the target
	)
	ack := func() error {
		return conn.SendStandbyStatus(ctx, pgoutput.StandbyStatus{Write: durable, Flush: durable, Apply: durable})
	}
	next := time.Now().Add(10 * time.Second)
	for {
		rctx, cancel := context.WithDeadline(ctx, next)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		if pgoutput.Timeout(err) || time.Now().After(next) {
			if err := ack(); err != nil {
				return
			}
			next = time.Now().Add(10 * time.Second)
			continue
		}
		if err != nil {
			return
		}
		switch msg := msg.(type) {
		case *pgoutput.PrimaryKeepalive:
			if msg.ReplyRequested {
				ack()
			}
		case *pgoutput.XLogData:
			m, err := dec.Decode(msg.Data)
			if err != nil {
				return
			}
			switch m := m.(type) {
			case *pgoutput.Relation:
				if d := rels.Add(m); !d.New && !d.Empty() && !d.OnlyAdded() {
					return // schema change that needs a resync
				}
			case *pgoutput.Commit:
				// Apply the transaction with m.TransactionEndLSN stored in
				// the same target transaction, then:
				durable = m.TransactionEndLSN
			}
		}
	}
}
