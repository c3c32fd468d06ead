// Package e2e holds pgtwin's end-to-end tests: the real pgtwin binary, built
// once by TestMain, runs as a daemon on a real filesystem (a loop-mounted
// btrfs image, or the copy driver where speed does not matter) with real
// PostgreSQL instances, and the tests drive it through the CLI as root and as
// ordinary OS users they create.
//
// It must not reach into the daemon's packages (twin, engine) beyond the
// socket API's wire types: what it checks, it checks from the outside (CLI
// output, connections, the process table, the data directory), the way an
// operator would.
package e2e
