package twinsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// errSourceUnreachable is returned (wrapped) when the source could not be
// reached within the backoff's attempts.
var errSourceUnreachable = errors.New("source unreachable")

// backoff is how source connection failures are retried: waits start at
// Initial and double up to Max, for at most Attempts tries in all.
type backoff struct {
	Initial  time.Duration
	Max      time.Duration
	Attempts int
}

// defaultBackoff rides out a source restart or failover (about 2 minutes).
var defaultBackoff = backoff{Initial: time.Second, Max: 30 * time.Second, Attempts: 8}

func (b backoff) orDefault() backoff {
	if b.Attempts <= 0 {
		return defaultBackoff
	}
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	return b
}

// retry runs fn until it succeeds, fails with an error that is not a source
// connection fault, or the attempts are used up.
func (b backoff) retry(ctx context.Context, log zerolog.Logger, what string, fn func() error) error {
	b = b.orDefault()
	wait := b.Initial
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retriable(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= b.Attempts {
			return fmt.Errorf("%w after %d attempts: %w", errSourceUnreachable, attempt, err)
		}
		log.Warn().Err(err).Int(logkey.Attempt, attempt).Dur(logkey.Duration, wait).Msg(what + " failed, retrying")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, b.Max)
	}
}

// retriable reports whether err is a connection fault worth retrying: the
// server unreachable, restarting, or the connection dropped. Bad passwords,
// missing databases and SQL errors are not.
func retriable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var te *toolError
	if errors.As(err, &te) {
		return te.connectionFault()
	}
	if kind := classify(err); kind != nil {
		return kind == errServerGone
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || pgconn.SafeToRetry(err) || isClosedConn(err)
}

func isClosedConn(err error) bool {
	// pgconn reports use of a connection it closed after an I/O error this way.
	return errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, net.ErrClosed)
}

// connectSource opens a source connection, retrying connection faults.
func (d *dumper) connectSource(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := d.Source.connConfig()
	if err != nil {
		return nil, err
	}
	var conn *pgx.Conn
	err = d.Backoff.retry(ctx, d.Log, "connect to source", func() error {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		if classify(err) == errInsufficientPrivilege { // no CONNECT on the database
			return nil, fmt.Errorf("connect to source as %s: %s: %s", cfg.User, pgMessage(err), setupSQLHint)
		}
		return nil, fmt.Errorf("connect to source: %w", err)
	}
	return conn, nil
}
