// Package sample builds the demo's source database: a small shop whose tables
// are full of fake but real-looking PII (customers, addresses, orders,
// payments with card numbers, a jsonb profile), with foreign keys, a UNIQUE
// email, an enum, an identity column and a sequence. It is what `make demo`,
// the sync tests and the sync benchmark copy and mask.
//
// It knows only SQL: it hands out statements and the masking rules that fit
// them, and never touches a twin.
package sample
