package proxy_test

import (
	"context"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine/proxy"
)

// The daemon gives each branch a proxy on the branch's stable port; the
// Waker turns its "start the instance unless it runs" into a Backend that
// starts once however many clients arrive together.
func Example() {
	start := func(ctx context.Context) (string, error) {
		// Start the branch's postmaster (listening on its unix socket only)
		// if it is not running, and wait until it accepts connections.
		return filepath.Join("/var/lib/pgtwin/run/dev", ".s.PGSQL.6001"), nil
	}
	p := proxy.New(proxy.Options{
		Addr:       "127.0.0.1:6001",
		Backend:    proxy.NewWaker(start, time.Minute),
		Logger:     zerolog.Nop(),
		RefuseUser: "pgtwin",
		Name:       `branch "dev"`,
	})
	if err := p.Start(context.Background()); err != nil {
		return // errors.Is(err, proxy.ErrAddrInUse) when the port is taken
	}
	defer p.Stop()

	// An idle sweeper suspends the branch when nobody has used it for a while.
	if p.Active() == 0 && time.Since(p.LastActive()) > 30*time.Minute {
		_ = "stop the instance; the next connection starts it again"
	}
}
