package proxy

import (
	"io"
	"net"
)

// CopyMode is how sessions move bytes after startup, for benchmarks.
type CopyMode int

const (
	CopyRelay  CopyMode = iota // the relay loops: the default
	CopyIO                     // io.Copy through Go's poller, which splices TCP<->unix
	CopyBuffer                 // io.CopyBuffer through a 32 KiB buffer
)

// SetCopyMode switches how sessions started from now on copy.
func SetCopyMode(m CopyMode) {
	useRelay = m == CopyRelay
	switch m {
	case CopyBuffer:
		copyConn = func(dst, src net.Conn) error {
			_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 32<<10))
			return err
		}
	default:
		copyConn = func(dst, src net.Conn) error { _, err := io.Copy(dst, src); return err }
	}
}

// SetLoops caps the relay's event loops for sessions started from now on:
// 0 is the default (GOMAXPROCS-1), and a cap above the session count gives
// each session a loop of its own.
func SetLoops(n int) {
	loops.mu.Lock()
	maxLoops = n
	loops.mu.Unlock()
}

// SetYield turns the loops' periodic Gosched (yieldEvery) on or off for
// loops started from now on.
func SetYield(on bool) {
	loops.mu.Lock()
	yieldEvery = 0
	if on {
		yieldEvery = yieldPeriod
	}
	loops.mu.Unlock()
}

// Loops is how many relay loops run.
func Loops() int {
	loops.mu.Lock()
	defer loops.mu.Unlock()
	return len(loops.loops)
}
