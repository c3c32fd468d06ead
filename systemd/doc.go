// Package systemd holds pgtwin's systemd unit (pgtwin.service) and the test
// that keeps its hardening honest: systemd-analyze must find the unit clean
// and its exposure at most 3.5. There is no Go code to import here.
package systemd
