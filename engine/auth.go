package engine

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgtwin/pgtwin/internal/durable"
)

// meta is what the engine needs to know of a volume that postgres does not
// record itself. It travels with snapshots and clones.
type meta struct {
	Superuser string `json:"superuser"`
	Version   string `json:"version"`
}

const metaFile = "pgtwin-volume.json"

// configure writes pgtwin's authentication and settings into a fresh
// volume.
func (e *Engine) configure(id, superuser string) error {
	pgdata := e.DataPath(id)
	if err := e.writeAuth(id, superuser); err != nil {
		return err
	}
	p := filepath.Join(pgdata, "postgresql.conf")
	conf, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	conf = append(conf, "\n# pgtwin\npassword_encryption = 'scram-sha-256'\n"...)
	if err := durable.WriteFile(p, conf, 0o600); err != nil {
		return err
	}
	if err := e.user.chown(p); err != nil {
		return err
	}
	b, _ := json.Marshal(meta{Superuser: superuser, Version: e.bin.version})
	return durable.WriteFile(filepath.Join(e.drv.Path(id), metaFile), b, 0o644)
}

// writeAuth writes pg_hba.conf and pg_ident.conf: the superuser only over
// the unix socket, for root and run_as by peer identity, never over TCP;
// everyone else with SCRAM, over TCP only from the listen address (the
// daemon's proxy, or the instance's own listener there).
func (e *Engine) writeAuth(id, superuser string) error {
	pgdata := e.DataPath(id)
	hba := fmt.Sprintf(`# Written by pgtwin at every start. Only root and %[2]s reach the superuser, over the unix socket.
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all  %[1]s  peer map=pgtwin
local   all  all  scram-sha-256
host    all  %[1]s  all  reject
host    all  %[3]s  all  reject
host    all  all  %[4]s  scram-sha-256
`, quoteHBA(superuser), e.user.name, quoteHBA(ReaderRole), hbaNet(e.opts.Config.ListenAddress))
	osUsers := []string{"root", e.user.name}
	if e.user.self != "root" && e.user.self != e.user.name {
		osUsers = append(osUsers, e.user.self)
	}
	var ident strings.Builder
	ident.WriteString("# Written by pgtwin.\n# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\n")
	for _, u := range osUsers {
		fmt.Fprintf(&ident, "pgtwin  %s  %s\n", quoteHBA(u), quoteHBA(superuser))
	}
	files := map[string][]byte{
		"pg_hba.conf":   []byte(hba),
		"pg_ident.conf": []byte(ident.String()),
	}
	for name, b := range files {
		p := filepath.Join(pgdata, name)
		if old, err := os.ReadFile(p); err == nil && string(old) == string(b) {
			continue
		}
		if err := durable.WriteFile(p, b, 0o600); err != nil {
			return err
		}
		if err := e.user.chown(p); err != nil {
			return err
		}
	}
	return nil
}

// hbaNet is the pg_hba address that matches exactly the listen address; an
// unspecified address (0.0.0.0, ::) is the administrator's choice to listen
// everywhere.
func hbaNet(listen string) string {
	ip := net.ParseIP(listen)
	switch {
	case ip == nil:
		return "127.0.0.1/32"
	case ip.IsUnspecified() && ip.To4() != nil:
		return "0.0.0.0/0"
	case ip.IsUnspecified():
		return "::/0"
	case ip.To4() != nil:
		return ip.String() + "/32"
	default:
		return ip.String() + "/128"
	}
}

func (e *Engine) readMeta(id string) meta {
	var m meta
	b, err := os.ReadFile(filepath.Join(e.drv.Path(id), metaFile))
	if err == nil {
		_ = json.Unmarshal(b, &m)
	}
	if m.Superuser == "" {
		m.Superuser = "postgres"
	}
	return m
}

// quoteHBA double-quotes a name for pg_hba.conf or pg_ident.conf when needed.
func quoteHBA(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\",#") && s != "all" && !strings.HasPrefix(s, "+") && !strings.HasPrefix(s, "/") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
