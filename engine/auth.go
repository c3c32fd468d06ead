package engine

import (
	"encoding/json"
	"fmt"
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

// configure writes pgtwin's authentication: the superuser only over the unix
// socket, for root and run_as by peer identity; everyone else with SCRAM.
func (e *Engine) configure(id, superuser string) error {
	pgdata := e.DataPath(id)
	hba := fmt.Sprintf(`# Written by pgtwin. Only root and %[2]s reach the superuser, over the unix socket.
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all  %[1]s  peer map=pgtwin
local   all  all  scram-sha-256
host    all  all  0.0.0.0/0  scram-sha-256
host    all  all  ::/0  scram-sha-256
`, quoteHBA(superuser), e.user.name)
	osUsers := []string{"root", e.user.name}
	if e.user.self != "root" && e.user.self != e.user.name {
		osUsers = append(osUsers, e.user.self)
	}
	var ident strings.Builder
	ident.WriteString("# Written by pgtwin.\n# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\n")
	for _, u := range osUsers {
		fmt.Fprintf(&ident, "pgtwin  %s  %s\n", quoteHBA(u), quoteHBA(superuser))
	}
	conf, err := os.ReadFile(filepath.Join(pgdata, "postgresql.conf"))
	if err != nil {
		return err
	}
	conf = append(conf, "\n# pgtwin\npassword_encryption = 'scram-sha-256'\n"...)
	files := map[string][]byte{
		"pg_hba.conf":     []byte(hba),
		"pg_ident.conf":   []byte(ident.String()),
		"postgresql.conf": conf,
	}
	for name, b := range files {
		p := filepath.Join(pgdata, name)
		if err := durable.WriteFile(p, b, 0o600); err != nil {
			return err
		}
		if err := e.user.chown(p); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(meta{Superuser: superuser, Version: e.bin.version})
	return durable.WriteFile(filepath.Join(e.drv.Path(id), metaFile), b, 0o644)
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
