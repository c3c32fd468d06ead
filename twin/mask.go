package twin

import (
	"context"
	"net/http"

	"github.com/pgtwin/pgtwin/twin/api"
)

// Masking answers the mask endpoints. The daemon's Syncer provides it when
// it implements it (the sync owns the source credentials, rules and key);
// the twin only says which database a caller may have scanned.
type Masking interface {
	MaskPlan(ctx context.Context) (api.MaskPlan, error)
	// MaskCheck scans the database at connString (the scan role's, which
	// reads every table and can do nothing else) and reports findings
	// redacted.
	MaskCheck(ctx context.Context, connString string) (api.MaskCheck, error)
}

func (t *Twin) masking() Masking {
	m, _ := t.getSyncer().(Masking)
	return m
}

type route = func(pattern string, fn func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error))

// maskRoutes adds GET /v1/mask/plan and POST /v1/mask/check. The plan shows
// no values, so every socket user may read it; a check scans main (anyone)
// or a branch the caller sees.
func (t *Twin) maskRoutes(h route) {
	h("GET /v1/mask/plan", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		m := t.masking()
		if m == nil {
			return nil, 0, errNoSync
		}
		p, err := m.MaskPlan(r.Context())
		return p, 200, err
	})
	h("POST /v1/mask/check", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		m := t.masking()
		if m == nil {
			return nil, 0, errNoSync
		}
		var req api.MaskCheckRequest
		if err := decode(r, &req); err != nil {
			return nil, 0, err
		}
		conn, target, err := t.checkTarget(r.Context(), c, req.Branch)
		if err != nil {
			return nil, 0, err
		}
		res, err := m.MaskCheck(r.Context(), conn)
		res.Target = target
		return res, 200, err
	})
}

// checkTarget is a scan-role connection string to main's database, or to a
// branch's that c sees.
func (t *Twin) checkTarget(ctx context.Context, c Caller, branch string) (conn, target string, err error) {
	if branch == "" || branch == MainName {
		inst, err := t.startMain(ctx)
		if err != nil {
			return "", "", err
		}
		conn, err := t.eng.ReaderConnString(ctx, inst, t.MainDatabase())
		return conn, MainName, err
	}
	t.mu.Lock()
	rec := t.branches[branch]
	if rec == nil || !c.sees(rec) {
		t.mu.Unlock()
		return "", "", notFound(branch)
	}
	id, db := rec.ID, rec.Database
	t.mu.Unlock()
	// A suspended branch is woken as a connection to it would be.
	if _, err := t.wake(ctx, id); err != nil {
		return "", "", refuse(ErrConflict, "branch %q %v; reset it, then run the check again", branch, err)
	}
	inst, ok := t.eng.Instance(id)
	if !ok {
		return "", "", refuse(ErrConflict, "branch %q is not running; connect to it once (or reset it), then run the check again", branch)
	}
	// Never the superuser: the branch's tables, and any function its owner
	// hid in them, are hers.
	conn, err = t.eng.ReaderConnString(ctx, inst, db)
	return conn, branch, err
}
