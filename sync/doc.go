// Package twinsync gets data from the source database into the main twin:
// dump mode (schema via pg_dump, data via COPY streams masked in flight) and
// logical mode (a pgoutput slot, an initial copy in the slot's snapshot, then
// streaming apply). It also reads the source catalog for the masking plan.
//
// The folder is sync/ but the package is twinsync, so it never shadows the
// standard library's sync; import it as
//
//	twinsync "github.com/pgtwin/pgtwin/sync"
//
// It must not know about branches or the socket: it writes into main through
// the twin's internal API and masks every row through package anonymize
// before anything reaches the dev host's disk.
package twinsync
