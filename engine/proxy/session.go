package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// errorWriteTimeout bounds writing a refusal to a client that does not read.
const errorWriteTimeout = 5 * time.Second

// drainTimeout is how long a client may keep sending after the server side
// has closed, before its connection is closed under it.
const drainTimeout = 5 * time.Second

func (p *Proxy) serve(s *session) {
	defer p.end(s)
	c := s.client
	log := p.log

	c.SetDeadline(time.Now().Add(p.opts.StartupTimeout))
	startup, params, err := p.negotiate(c)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			log.Debug().Err(err).Msg("client dropped before startup")
		}
		return
	}
	if startup == nil {
		p.stats.cancels.Add(1)
		return // a cancel request, done
	}
	c.SetDeadline(time.Time{})

	if u := params["user"]; u != "" && (u == p.opts.RefuseUser || slices.Contains(p.opts.RefuseAlso, u)) {
		log.Info().Msg("refused a login as one of the daemon's own roles")
		p.stats.refused.Add(1)
		what := "the superuser"
		if u != p.opts.RefuseUser {
			what = "pgtwin's own"
		}
		p.refuse(c, stateInvalidAuth, fmt.Sprintf(
			"role %q is %s, which cannot connect through pgtwin; use the branch's own role", u, what))
		return
	}

	server, err := p.reach()
	if err != nil {
		if p.ctx.Err() != nil {
			return // stopping: the client is being closed anyway
		}
		p.stats.wakeErrors.Add(1)
		log.Warn().Err(err).Msg("instance unavailable")
		p.refuse(c, stateCannotConnectNow, fmt.Sprintf("%s %v", p.opts.Name, err))
		return
	}
	if !p.attach(s, server) {
		server.Close()
		return
	}
	if _, err := server.Write(startup); err != nil {
		log.Warn().Err(err).Msg("send startup to instance")
		p.refuse(c, stateCannotConnectNow, fmt.Sprintf("%s is not reachable: %v", p.opts.Name, err))
		return
	}
	p.stats.sessions.Add(1)
	if !useRelay {
		pipe(c, server)
		return
	}
	r, err := p.takeOver(s)
	if err != nil {
		// Out of descriptors, say: relay the slower way.
		log.Debug().Err(err).Msg("relay loop unavailable; copying through the poller")
		pipe(c, server)
		return
	}
	if r == nil {
		return // stopping
	}
	if err := r.wait(); err != nil {
		log.Debug().Err(err).Msg("session ended")
	}
}

// reach wakes the instance and dials its socket. A failed dial gets one more
// wake: the instance may have stopped between the wake and the dial. The
// error completes a sentence that begins with Options.Name.
func (p *Proxy) reach() (*net.UnixConn, error) {
	var err error
	for range 2 {
		ctx, cancel := context.WithTimeout(p.ctx, p.opts.WakeTimeout)
		p.gate.RLock()
		path, werr := p.currentBackend().Wake(ctx)
		p.gate.RUnlock()
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		if werr != nil {
			if timedOut {
				return nil, fmt.Errorf("did not start within %v: %w", p.opts.WakeTimeout, werr)
			}
			return nil, fmt.Errorf("could not be started: %w", werr)
		}
		p.socket.Store(&path)
		d := net.Dialer{Timeout: 10 * time.Second}
		var conn net.Conn
		conn, err = d.DialContext(p.ctx, "unix", path)
		if err == nil {
			return conn.(*net.UnixConn), nil
		}
		if p.ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("is not reachable: %w", err)
}

// negotiate reads the client's first packets: it declines TLS and GSS
// encryption, relays a cancel request (returning a nil startup), and returns
// the startup message as sent together with its parameters.
func (p *Proxy) negotiate(c *net.TCPConn) (startup []byte, params map[string]string, err error) {
	// At most one SSLRequest and one GSSENCRequest precede the startup.
	for range 3 {
		raw, code, err := readPacket(c)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case code == codeSSL || code == codeGSSENC:
			if len(raw) != 8 {
				p.refuse(c, stateProtocol, "invalid length of encryption request")
				return nil, nil, fmt.Errorf("bad encryption request")
			}
			if _, err := c.Write([]byte{'N'}); err != nil {
				return nil, nil, err
			}
		case code == codeCancel:
			p.relayCancel(c, raw)
			return nil, nil, nil
		case code>>16 == protoMajor3:
			params, err := startupParams(raw)
			if err != nil {
				p.refuse(c, stateProtocol, "invalid startup packet: "+err.Error())
				return nil, nil, err
			}
			return raw, params, nil
		default:
			p.refuse(c, stateUnsupported, fmt.Sprintf(
				"unsupported frontend protocol %d.%d: server supports 3.x", code>>16, code&0xffff))
			return nil, nil, fmt.Errorf("unsupported protocol %#x", code)
		}
	}
	p.refuse(c, stateProtocol, "too many encryption requests")
	return nil, nil, fmt.Errorf("too many encryption requests")
}

// relayCancel forwards a CancelRequest verbatim to the instance the last
// wake found, and waits for the instance to close it so that the client's
// EOF still means "the cancel was delivered".
func (p *Proxy) relayCancel(c *net.TCPConn, raw []byte) {
	if len(raw) < cancelMinLen {
		return
	}
	path := p.socket.Load()
	if path == nil {
		return // never woken through this proxy: there is nothing to cancel
	}
	conn, err := net.DialTimeout("unix", *path, 2*time.Second)
	if err != nil {
		p.log.Debug().Err(err).Msg("cancel request: instance not running")
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		return
	}
	io.Copy(io.Discard, conn)
}

// refuse sends a FATAL ErrorResponse; the caller then closes the connection.
func (p *Proxy) refuse(c *net.TCPConn, sqlstate, message string) {
	c.SetWriteDeadline(time.Now().Add(errorWriteTimeout))
	c.Write(errorResponse(sqlstate, message))
}

// pipe copies bytes both ways until the session is over, through Go's
// poller: the fallback when a relay cannot be set up.
func pipe(client *net.TCPConn, server *net.UnixConn) {
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		if err := copyConn(server, client); err == nil {
			// The client closed its side: pass the EOF on and let the
			// instance end the session, which ends the other direction.
			server.CloseWrite()
			return
		}
		server.Close()
	}()

	copyConn(client, server)
	// The instance is done with the session. FIN the client after the last
	// bytes, and give it a moment to stop sending before closing for good,
	// so unread input does not turn the close into a reset that could
	// discard the instance's last message.
	client.CloseWrite()
	client.SetReadDeadline(time.Now().Add(drainTimeout))
	<-upDone
	client.Close()
	server.Close()
}

// useRelay picks relay over pipe; benchmarks turn it off to compare.
var useRelay = true

// copyConn is io.Copy, which splices TCP<->unix; tests swap it.
var copyConn = func(dst, src net.Conn) error { _, err := io.Copy(dst, src); return err }
