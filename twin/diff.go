package twin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

// binDirer is the part of *engine.Engine that says where pg_dump is.
type binDirer interface{ BinDir() string }

var _ binDirer = (*engine.Engine)(nil)

// DiffBranch is the schema diff of branch name against other: "" for the
// snapshot it was made (or last reset) from, "main", a branch c sees or a
// snapshot id.
func (t *Twin) DiffBranch(ctx context.Context, c Caller, name, other string) (api.SchemaDiff, error) {
	t.mu.Lock()
	rec := t.branches[name]
	if rec == nil || !c.sees(rec) {
		t.mu.Unlock()
		return api.SchemaDiff{}, notFound(name)
	}
	if other == "" {
		other = rec.Snapshot
	}
	o := t.branches[other]
	s := t.snaps[other]
	t.mu.Unlock()

	var from string
	var err error
	switch {
	case other == MainName:
		from, err = t.mainSchema(ctx)
	case o != nil && c.sees(o):
		from, err = t.branchSchema(ctx, other)
	case s != nil && s.State == stateReady && t.seesSnapshotLocked(c, s):
		from, err = t.snapshotSchema(ctx, s.ID)
	default:
		return api.SchemaDiff{}, refuse(ErrNotFound, "%q is neither main, one of your branches, nor a snapshot; see pgtwin branches list and pgtwin snapshots list", other)
	}
	if err != nil {
		return api.SchemaDiff{}, err
	}
	to, err := t.branchSchema(ctx, name)
	if err != nil {
		return api.SchemaDiff{}, err
	}
	return schemaDiff(other, name, from, to), nil
}

func (t *Twin) seesSnapshotLocked(c Caller, s *snapshotRecord) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seesSnapshot(c, s)
}

func (t *Twin) mainSchema(ctx context.Context) (string, error) {
	inst, err := t.MainInstance(ctx)
	if err != nil {
		return "", err
	}
	return t.dumpSchema(ctx, inst, t.MainDatabase())
}

// branchSchema dumps a branch's schema, starting it if it is suspended
// (as a connection would). Its lock keeps a reset or delete off meanwhile.
func (t *Twin) branchSchema(ctx context.Context, name string) (string, error) {
	rec, unlock := t.lockBranch(name)
	defer unlock()
	if rec == nil {
		return "", notFound(name)
	}
	inst, err := t.startLocked(ctx, rec, "diff")
	if err != nil {
		return "", fmt.Errorf("branch %s %w", name, err)
	}
	t.mu.Lock()
	db := rec.Database
	t.mu.Unlock()
	return t.dumpSchema(ctx, inst, db)
}

// snapshotSchema dumps a snapshot's schema from a throwaway clone of it.
// Its id starts with "b-" so that a crash leaves nothing the next start
// does not remove as an orphan.
func (t *Twin) snapshotSchema(ctx context.Context, id string) (string, error) {
	ctx = context.WithoutCancel(ctx)
	t.mu.Lock()
	s := t.snaps[id]
	var vol string
	if s != nil {
		vol = s.Volume
	}
	t.mu.Unlock()
	db := t.MainDatabase()
	if s == nil {
		return "", refuse(ErrNotFound, "snapshot %q is gone", id)
	}
	tmp := "b-diff-" + randomHex(6)
	if err := t.eng.Clone(ctx, vol, tmp); err != nil {
		return "", fmt.Errorf("clone snapshot %s for diff: %w", id, err)
	}
	defer func() {
		if err := t.eng.Stop(ctx, tmp); err != nil && !errors.Is(err, engine.ErrNotFound) {
			t.log.Warn().Err(err).Str(logkey.Volume, tmp).Msg("could not stop the diff's clone")
		}
		if err := t.destroy(ctx, tmp); err != nil {
			t.log.Warn().Err(err).Str(logkey.Volume, tmp).Msg("could not remove the diff's clone; the next start removes it")
		}
	}()
	// Unix socket only; the port only names the socket file in the
	// clone's own socket directory.
	inst, err := t.eng.Start(ctx, tmp, engine.InstanceSpec{Port: 5432, Settings: t.cfg.Branches.Settings, NoTCP: true})
	if err != nil {
		return "", fmt.Errorf("start clone of snapshot %s for diff: %w", id, err)
	}
	return t.dumpSchema(ctx, inst, db)
}

// dumpSchema is pg_dump --schema-only of db, without ownership, privileges
// and pgtwin's own schema. It runs as the scan role (pg_read_all_data,
// never a superuser) over the pinned connection: a branch owner's objects
// and settings meet a role that can change nothing.
func (t *Twin) dumpSchema(ctx context.Context, inst *engine.Instance, db string) (string, error) {
	bd, ok := t.eng.(binDirer)
	if !ok {
		return "", errors.New("diff: the engine does not say where pg_dump is")
	}
	cs, err := t.eng.ReaderConnString(ctx, inst, db)
	if err != nil {
		return "", err
	}
	// The password goes in the environment, not on pg_dump's command line.
	cs, pw, _ := strings.Cut(cs, " password=")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := osexec.CommandContext(ctx, filepath.Join(bd.BinDir(), "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
		"--no-tablespaces", "--no-publications", "--no-subscriptions", "--no-security-labels",
		"--exclude-schema="+syncSchema, "--dbname="+cs)
	cmd.Env = []string{"PGPASSWORD=" + pw, "PGCONNECT_TIMEOUT=30", "LC_ALL=C"}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("pg_dump --schema-only of %s: %v: %s", inst.ID, err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// syncSchema is where the logical sync keeps its progress; not the user's.
const syncSchema = "pgtwin_sync"

// diffTarget says whether GET /v1/branches/{name...} asks for a diff, and of
// which branch. Names may hold slashes and even end in "/diff": a name sent
// escaped as one segment (as the client sends it) before a literal "/diff"
// is a diff; otherwise a branch c sees with the whole name wins.
func (t *Twin) diffTarget(r *http.Request, c Caller) (string, bool) {
	full := r.PathValue("name")
	name, ok := strings.CutSuffix(full, "/diff")
	if !ok {
		return "", false
	}
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/v1/branches/")
	if pre, ok := strings.CutSuffix(raw, "/diff"); ok && !strings.Contains(pre, "/") {
		return name, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.branches[full]; b != nil && c.sees(b) {
		return "", false
	}
	return name, true
}
