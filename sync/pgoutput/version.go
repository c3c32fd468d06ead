package pgoutput

// Server versions (server_version_num) where pgoutput gained what this
// package can ask for.
const (
	// Version14 brought proto_version 2 (streaming of in-progress
	// transactions) and the messages and binary options.
	Version14 = 140000
)

// ArgsFor is the richest set of options a server of version
// (server_version_num) accepts for publications: from PostgreSQL 14,
// proto_version 2 with streaming and pg_logical_emit_message output; before,
// proto_version 1 with neither (a 12 or 13 server refuses both options at
// START_REPLICATION). Without streaming a big transaction arrives whole,
// after its commit; without messages, progress past unpublished WAL comes
// from keepalives only.
func ArgsFor(version int, publications ...string) PluginArgs {
	if version >= Version14 {
		return PluginArgs{ProtoVersion: 2, Publications: publications, Messages: true, Streaming: true}
	}
	return PluginArgs{ProtoVersion: 1, Publications: publications}
}
