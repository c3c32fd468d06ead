// Package drivertest is the conformance suite every storage driver passes on
// a real filesystem: volume lifecycle, metadata kept by clones, isolation of
// clones and snapshots, usage accounting, and bad input (missing source,
// existing target, invalid ids, a full filesystem) leaving nothing behind.
//
// It knows the engine.Driver contract only, never a particular driver.
package drivertest
