package pgoutput

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

var (
	// ErrStreaming is returned by commands issued while the connection is in
	// COPY BOTH mode after StartReplication.
	ErrStreaming = errors.New("replication connection is streaming")
	// ErrNotStreaming is returned by stream calls before StartReplication.
	ErrNotStreaming = errors.New("replication connection is not streaming")
	// ErrStreamDone is returned by ReceiveMessage when the server ended the
	// stream (CopyDone), e.g. on shutdown or in answer to EndStreaming.
	ErrStreamDone = errors.New("replication stream ended by server")
)

// Conn is a replication connection (replication=database): it accepts the
// replication commands and, outside streaming, plain SQL.
type Conn struct {
	pg        *pgconn.PgConn
	streaming bool
}

// Connect opens a replication connection to the database named in connString
// (URL or key=value form); replication=database is added.
func Connect(ctx context.Context, connString string) (*Conn, error) {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("replication connection config: %w", err)
	}
	return ConnectConfig(ctx, cfg)
}

// ConnectConfig is Connect for a parsed config; cfg.RuntimeParams gets
// replication=database.
func ConnectConfig(ctx context.Context, cfg *pgconn.Config) (*Conn, error) {
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["replication"] = "database"
	pg, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("replication connect: %w", err)
	}
	return &Conn{pg: pg}, nil
}

// PgConn gives the underlying connection, for SQL in the same session (e.g.
// reading in a slot's USE_SNAPSHOT transaction). Do not use it while streaming.
func (c *Conn) PgConn() *pgconn.PgConn { return c.pg }

// Close closes the connection. A temporary slot it created is dropped by the
// server.
func (c *Conn) Close(ctx context.Context) error {
	return c.pg.Close(ctx)
}

// exec runs one replication command in the simple protocol.
func (c *Conn) exec(ctx context.Context, sql string) (*pgconn.Result, error) {
	if c.streaming {
		return nil, ErrStreaming
	}
	results, err := c.pg.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(results) != 1 {
		return nil, fmt.Errorf("expected 1 result set, got %d", len(results))
	}
	return results[0], nil
}

// SystemInfo is the answer to IDENTIFY_SYSTEM.
type SystemInfo struct {
	SystemID string // unique cluster identifier
	Timeline int32
	XLogPos  LSN    // current WAL flush position
	DBName   string // database this connection is attached to
}

// IdentifySystem runs IDENTIFY_SYSTEM.
func (c *Conn) IdentifySystem(ctx context.Context) (SystemInfo, error) {
	if c.streaming {
		return SystemInfo{}, ErrStreaming
	}
	r, err := pglogrepl.IdentifySystem(ctx, c.pg)
	if err != nil {
		return SystemInfo{}, fmt.Errorf("identify system: %w", err)
	}
	return SystemInfo{SystemID: r.SystemID, Timeline: r.Timeline, XLogPos: LSN(r.XLogPos), DBName: r.DBName}, nil
}

// Snapshot actions for CreateReplicationSlot.
const (
	// SnapshotExport exports a snapshot other sessions can import with SET
	// TRANSACTION SNAPSHOT. It stays valid only until this connection runs
	// its next command (or closes), so the caller must finish the initial
	// copy on its other connections before calling anything else on this
	// Conn, StartReplication included.
	SnapshotExport = "export"
	// SnapshotUse makes the slot's snapshot that of the current transaction
	// on this connection, which must be a REPEATABLE READ transaction that
	// has run no query yet (BEGIN through PgConn).
	SnapshotUse = "use"
	// SnapshotNothing creates the slot without a snapshot.
	SnapshotNothing = "nothing"
)

// SlotOptions shape CreateReplicationSlot.
type SlotOptions struct {
	// Temporary slots are dropped when the connection ends or on error.
	Temporary bool
	// Snapshot is SnapshotExport, SnapshotUse, SnapshotNothing, or "" for
	// the server's default (export).
	Snapshot string
}

// SlotResult is the answer to CREATE_REPLICATION_SLOT.
type SlotResult struct {
	SlotName string
	// ConsistentPoint is where streaming must start so that it neither
	// misses nor repeats anything the snapshot saw.
	ConsistentPoint LSN
	// SnapshotName is set with SnapshotExport.
	SnapshotName string
	OutputPlugin string
}

// CreateReplicationSlot creates a logical slot using the output plugin
// (normally "pgoutput"). It uses the pre-15 option syntax so that older
// sources (RDS still runs 12-14) accept it.
//
// With SnapshotExport the returned SnapshotName is importable only while
// this connection stays idle: finish the initial copy on other connections
// (SET TRANSACTION SNAPSHOT) before issuing the next command here.
func (c *Conn) CreateReplicationSlot(ctx context.Context, slot, plugin string, opts SlotOptions) (SlotResult, error) {
	if c.streaming {
		return SlotResult{}, ErrStreaming
	}
	var action string
	switch opts.Snapshot {
	case "":
	case SnapshotExport:
		action = "EXPORT_SNAPSHOT"
	case SnapshotUse:
		action = "USE_SNAPSHOT"
	case SnapshotNothing:
		action = "NOEXPORT_SNAPSHOT"
	default:
		return SlotResult{}, fmt.Errorf("create replication slot %s: unknown snapshot action %q", slot, opts.Snapshot)
	}
	// pglogrepl pastes the slot and plugin names into the command as they
	// are: quote them here.
	r, err := pglogrepl.CreateReplicationSlot(ctx, c.pg, quoteIdent(slot), quoteIdent(plugin),
		pglogrepl.CreateReplicationSlotOptions{Temporary: opts.Temporary, SnapshotAction: action, Mode: pglogrepl.LogicalReplication})
	if err != nil {
		return SlotResult{}, fmt.Errorf("create replication slot %s: %w", slot, err)
	}
	cp, err := ParseLSN(r.ConsistentPoint)
	if err != nil {
		return SlotResult{}, fmt.Errorf("create replication slot %s: %w", slot, err)
	}
	return SlotResult{SlotName: r.SlotName, ConsistentPoint: cp, SnapshotName: r.SnapshotName, OutputPlugin: r.OutputPlugin}, nil
}

// DropReplicationSlot drops a slot. With wait it waits for a slot that is
// active on another connection instead of failing.
func (c *Conn) DropReplicationSlot(ctx context.Context, slot string, wait bool) error {
	if c.streaming {
		return ErrStreaming
	}
	// Quoted here: pglogrepl does not quote the slot name.
	if err := pglogrepl.DropReplicationSlot(ctx, c.pg, quoteIdent(slot), pglogrepl.DropReplicationSlotOptions{Wait: wait}); err != nil {
		return fmt.Errorf("drop replication slot %s: %w", slot, err)
	}
	return nil
}

// PluginArgs are pgoutput's START_REPLICATION options.
type PluginArgs struct {
	// ProtoVersion is 1 or 2 (2 is needed for Streaming); 0 means 2.
	ProtoVersion int
	// Publications to stream; at least one.
	Publications []string
	// Messages asks for pg_logical_emit_message output. Messages, Streaming
	// and Binary need PostgreSQL 14 or later.
	Messages bool
	// Streaming asks for large in-progress transactions to be streamed in
	// segments (StreamStart/StreamStop, then StreamCommit or StreamAbort).
	Streaming bool
	// Binary asks for binary column values ('b') where the type allows.
	Binary bool
	// Extra options passed verbatim (name -> value), for newer servers.
	Extra map[string]string
}

func (a PluginArgs) options() ([]string, error) {
	v := a.ProtoVersion
	if v == 0 {
		v = 2
	}
	if v != 1 && v != 2 {
		return nil, fmt.Errorf("unsupported proto_version %d (want 1 or 2)", v)
	}
	if a.Streaming && v < 2 {
		return nil, fmt.Errorf("streaming needs proto_version 2")
	}
	if len(a.Publications) == 0 {
		return nil, fmt.Errorf("no publication named")
	}
	pubs := make([]string, len(a.Publications))
	for i, p := range a.Publications {
		pubs[i] = quoteIdent(p)
	}
	opts := []string{
		"proto_version " + quoteLiteral(strconv.Itoa(v)),
		"publication_names " + quoteLiteral(strings.Join(pubs, ",")),
	}
	if a.Messages {
		opts = append(opts, "messages 'true'")
	}
	if a.Streaming {
		opts = append(opts, "streaming 'true'")
	}
	if a.Binary {
		opts = append(opts, "binary 'true'")
	}
	keys := make([]string, 0, len(a.Extra))
	for k := range a.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		opts = append(opts, quoteIdent(k)+" "+quoteLiteral(a.Extra[k]))
	}
	return opts, nil
}

// StartReplication starts streaming from slot at start (normally the slot's
// consistent point, or the last position the target made durable; the
// server starts at the slot's confirmed position if that is later). The
// connection then only accepts ReceiveMessage, SendStandbyStatus and
// EndStreaming.
func (c *Conn) StartReplication(ctx context.Context, slot string, start LSN, args PluginArgs) error {
	if c.streaming {
		return ErrStreaming
	}
	opts, err := args.options()
	if err != nil {
		return fmt.Errorf("start replication %s: %w", slot, err)
	}
	// Quoted here: pglogrepl does not quote the slot name.
	err = pglogrepl.StartReplication(ctx, c.pg, quoteIdent(slot), pglogrepl.LSN(start),
		pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: opts})
	if err != nil {
		// On an ErrorResponse pglogrepl returns before the server's
		// ReadyForQuery: read to it so the connection takes commands again.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			c.drainToReady(ctx)
		}
		return fmt.Errorf("start replication %s: %w", slot, err)
	}
	c.streaming = true
	return nil
}

// drainToReady reads up to ReadyForQuery so the connection can take the next
// command after an error.
func (c *Conn) drainToReady(ctx context.Context) {
	for {
		msg, err := c.pg.ReceiveMessage(ctx)
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return
		}
	}
}

// quoteIdent quotes a name for a replication command.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
