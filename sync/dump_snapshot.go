package twinsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// errSnapshotReleased: a worker lost its source connection after the
// coordinator let the snapshot go, so the table cannot be copied again in it.
var errSnapshotReleased = errors.New("the exported snapshot was already released")

// coordinator holds the source transaction whose snapshot every worker and
// pg_dump import. Its lifetime is the window in which workers may (re)join
// the snapshot; it is released as soon as every table's COPY has started.
type coordinator struct {
	conn     *pgx.Conn
	snapshot string

	once     sync.Once
	mu       sync.Mutex
	released bool
}

func (r *run) exportSnapshot(ctx context.Context) error {
	conn, err := r.d.connectSource(ctx)
	if err != nil {
		return err
	}
	var snap string
	_, err = conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	if err == nil {
		err = conn.QueryRow(ctx, "SELECT pg_catalog.pg_export_snapshot()").Scan(&snap)
	}
	if err != nil {
		conn.Close(context.Background())
		return fmt.Errorf("export snapshot: %w", err)
	}
	r.coord = &coordinator{conn: conn, snapshot: snap}
	r.log.Debug().Str("source_snapshot", snap).Msg("exported source snapshot")
	return nil
}

// release ends the coordinator's transaction; workers that imported the
// snapshot keep their own hold on it until their last table is done.
func (c *coordinator) release() {
	c.once.Do(func() {
		c.mu.Lock()
		c.released = true
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.conn.Exec(ctx, "COMMIT")
		c.conn.Close(ctx)
	})
}

func (c *coordinator) isReleased() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released
}

// importSnapshot starts a worker's transaction in the coordinator's snapshot.
func (c *coordinator) importSnapshot(ctx context.Context, conn *pgx.Conn) error {
	if c.isReleased() {
		return errSnapshotReleased
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return err
	}
	// SET TRANSACTION SNAPSHOT takes no bind parameters.
	if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(c.snapshot)); err != nil {
		return fmt.Errorf("import snapshot: %w", err)
	}
	return nil
}

func quoteLiteral(s string) string {
	b := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			b = append(b, '\'')
		}
		b = append(b, s[i])
	}
	return string(append(b, '\''))
}
