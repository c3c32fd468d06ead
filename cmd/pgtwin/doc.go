// Package main is the pgtwin binary: `pgtwin serve` runs the daemon, every
// other command is a thin client of the daemon's socket API (twin/api).
//
// It parses flags, calls the API and formats answers (table, json, env). It
// must not know business rules: which names are valid, who may see what and
// how branches are made are the daemon's to decide and to explain.
package main
