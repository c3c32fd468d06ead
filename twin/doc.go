// Package twin is pgtwin's domain: the main twin (the instance only the sync
// writes), its immutable snapshots, the tree of branches cloned from them,
// their lifecycle (create, reset, delete, protect, TTL), the state that
// survives a crash, and the socket API server that exposes all of it. It
// owns each branch's TCP listener (an engine/proxy.Proxy on the branch's
// port, relaying to the instance's unix socket), suspends idle branches,
// wakes them on connect within branches.max_running, and keeps the
// Prometheus metrics.
//
// It must not know how storage is cloned or how postgres processes are run
// (that is package engine, behind the small Engine interface declared here),
// nor how rows are masked or synced (packages anonymize and sync write into
// main through ReplaceMain, MainInstance and TakeSnapshot).
package twin
