// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb into a
// fresh directory, a free port on 127.0.0.1, trust authentication, and removal
// when the test ends. Tests run as root and PostgreSQL refuses root, so the
// cluster runs as the "postgres" OS user.
//
// It is test support only and must not be imported by non-test code.
package pgtest
