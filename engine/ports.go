package engine

import (
	"fmt"
	"net"
	"strconv"
)

// AllocatePort returns the first port of engine.port_range that is not in
// inUse and can be bound on engine.listen_address right now.
func (e *Engine) AllocatePort(inUse map[int]bool) (int, error) {
	r := e.opts.Config.PortRange
	addr := e.opts.Config.ListenAddress
	for p := r.Low; p <= r.High && p > 0; p++ {
		if inUse[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("%w: every port of %s on %s is taken; widen engine.port_range", ErrNoFreePort, r, addr)
}
