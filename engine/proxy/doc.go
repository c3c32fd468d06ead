// Package proxy is the per-branch TCP listener: it accepts PostgreSQL client
// connections on a branch's stable address, wakes the instance behind it on
// the first connection, and then relays bytes between the client's TCP socket
// and the instance's unix socket.
//
// It reads only the first packets of a connection (SSL/GSS negotiation, cancel
// requests, the startup message); after the startup message it parses
// nothing: each session's sockets move to one of a few event loops, threads
// blocked in epoll sets shared by many sessions (see relay and loop), where
// a message costs one read and one write and busy sessions share wake-ups,
// as in haproxy.
//
// The branch socket offers no TLS: an SSLRequest or GSSENCRequest is answered
// 'N', so sslmode=prefer (libpq's default) falls back to plain TCP and
// sslmode=require fails with libpq's "server does not support SSL" error. The
// listener is meant for a developer host (engine.listen_address, usually
// loopback).
//
// The proxy refuses to carry a login as the instance's superuser role
// (Options.RefuseUser): the daemon reaches instances over the unix socket with
// peer authentication mapped to that role, so a superuser login it relayed
// would be let in without a password.
//
// It must not know branches, the daemon, or how instances are started and
// stored: it is given a listen address and a Backend that returns the unix
// socket of a running instance.
package proxy
