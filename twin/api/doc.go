// Package api is the socket API's wire format: the request and response types
// shared by the daemon's HTTP server (package twin) and the CLI's client, and
// the client itself. Shapes follow shared/SPEC.md; field names are a contract.
//
// It must not know how branches are made: it only carries them.
package api
