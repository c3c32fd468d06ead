package twin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/twin/api"
)

type ctxKey struct{}

// peer is the connecting process's credentials, read once per connection.
type peer struct {
	ok       bool
	uid, gid int
	pid      int
}

// Listen opens the unix socket at daemon.socket: parent directory 0755, a
// stale socket removed, mode 0660, group daemon.socket_group (else
// daemon.admin_group). If that group does not exist only root may connect.
func (t *Twin) Listen() (net.Listener, error) {
	path := t.cfg.Daemon.Socket
	if path == "" {
		return nil, fmt.Errorf("daemon.socket is empty; set it to a path such as /run/pgtwin/pgtwin.sock")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; move it away or set daemon.socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another daemon is listening on %s; stop it first", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	// No one may connect before the mode and group are right.
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	mode := os.FileMode(0o660)
	group := t.cfg.Daemon.SocketGroup
	if group == "" {
		group = t.cfg.Daemon.AdminGroup
	}
	gid := -1
	if group != "" {
		if g, err := user.LookupGroup(group); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		} else {
			t.log.Warn().Str("group", group).Str(logkey.Path, path).
				Msg("socket group does not exist; only root can use the socket (create the group and add users to it)")
		}
	}
	if gid < 0 {
		mode = 0o600
	} else if err := os.Chown(path, -1, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chown socket: %w", err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	t.log.Info().Str(logkey.Path, path).Str("group", group).Str("mode", mode.String()).Msg("socket listening")
	return ln, nil
}

// Serve answers the socket API on ln until ctx is done, then lets requests
// in flight finish (creates and resets complete or roll back).
func (t *Twin) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           t.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, ctxKey{}, peerOf(c))
		},
		ErrorLog: nil,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("socket server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.log.Warn().Err(err).Msg("socket server did not shut down cleanly")
	}
	return nil
}

func peerOf(c net.Conn) peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{}
	}
	var p peer
	_ = raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil {
			p = peer{ok: true, uid: int(cred.Uid), gid: int(cred.Gid), pid: int(cred.Pid)}
		}
	})
	return p
}

// Handler is the socket API. Requests without peer credentials are refused.
func (t *Twin) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			t.serveOne(w, r, fn)
		})
	}
	h("GET /v1/status", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		return t.Status(r.Context(), c), 200, nil
	})
	h("GET /v1/snapshots", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		return t.ListSnapshots(r.Context(), c), 200, nil
	})
	h("POST /v1/snapshots", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		var req api.CreateSnapshotRequest
		if err := decode(r, &req); err != nil {
			return nil, 0, err
		}
		s, err := t.CreateSnapshot(r.Context(), c, req)
		return s, http.StatusCreated, err
	})
	h("DELETE /v1/snapshots/{id}", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		return nil, http.StatusNoContent, t.DeleteSnapshot(r.Context(), c, r.PathValue("id"))
	})
	h("GET /v1/branches", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		return t.ListBranches(r.Context(), c), 200, nil
	})
	h("POST /v1/branches", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		var req api.CreateBranchRequest
		if err := decode(r, &req); err != nil {
			return nil, 0, err
		}
		if req.IfNotExists {
			b, existed, err := t.EnsureBranch(r.Context(), c, req)
			if existed {
				return b, http.StatusOK, err
			}
			return b, http.StatusCreated, err
		}
		b, err := t.CreateBranch(r.Context(), c, req)
		return b, http.StatusCreated, err
	})
	h("GET /v1/branches/{name...}", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		if name, ok := t.diffTarget(r, c); ok {
			d, err := t.DiffBranch(r.Context(), c, name, r.URL.Query().Get("other"))
			return d, 200, err
		}
		b, err := t.GetBranch(r.Context(), c, r.PathValue("name"))
		return b, 200, err
	})
	h("PATCH /v1/branches/{name...}", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		var req api.UpdateBranchRequest
		if err := decode(r, &req); err != nil {
			return nil, 0, err
		}
		b, err := t.UpdateBranch(r.Context(), c, r.PathValue("name"), req)
		return b, 200, err
	})
	h("DELETE /v1/branches/{name...}", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		return nil, http.StatusNoContent, t.DeleteBranch(r.Context(), c, r.PathValue("name"))
	})
	// POSTs under a branch are actions: .../reset, .../restore, .../suspend,
	// .../resume.
	// The name itself may hold slashes (and even end in "/reset"), so strip
	// exactly one suffix.
	h("POST /v1/branches/{name...}", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		path := r.PathValue("name")
		if name, ok := strings.CutSuffix(path, "/suspend"); ok {
			b, err := t.SuspendBranch(r.Context(), c, name)
			return b, 200, err
		}
		if name, ok := strings.CutSuffix(path, "/resume"); ok {
			b, err := t.ResumeBranch(r.Context(), c, name)
			return b, 200, err
		}
		if name, ok := strings.CutSuffix(path, "/restore"); ok {
			var req api.RestoreBranchRequest
			if err := decode(r, &req); err != nil {
				return nil, 0, err
			}
			b, err := t.RestoreBranch(r.Context(), c, name, req)
			return b, 200, err
		}
		name, ok := strings.CutSuffix(path, "/reset")
		if !ok {
			return nil, 0, refuse(ErrNotFound, "no such action; POST /v1/branches/{name}/reset, /restore, /suspend or /resume")
		}
		b, err := t.ResetBranch(r.Context(), c, name)
		return b, 200, err
	})
	h("GET /v1/sync", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		s := t.getSyncer()
		if s == nil {
			return nil, 0, errNoSync
		}
		return s.Status(), 200, nil
	})
	h("POST /v1/sync", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		if err := t.mayStartSync(c); err != nil {
			return nil, 0, err
		}
		var req api.SyncRequest
		if err := decode(r, &req); err != nil {
			return nil, 0, err
		}
		s := t.getSyncer()
		if s == nil {
			return nil, 0, errNoSync
		}
		st, err := s.Trigger(r.Context(), req)
		return st, http.StatusAccepted, err
	})
	h("POST /v1/sync/stop", func(w http.ResponseWriter, r *http.Request, c Caller) (any, int, error) {
		if err := t.mayStartSync(c); err != nil {
			return nil, 0, err
		}
		var req api.SyncStopRequest
		if err := decode(r, &req); err != nil {
			return nil, 0, err
		}
		s, ok := t.getSyncer().(SyncStopper)
		if !ok {
			return nil, 0, errNoSync
		}
		st, err := s.StopFollowing(r.Context(), req)
		return st, 200, err
	})
	t.maskRoutes(h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, api.Error{Error: fmt.Sprintf("no route %s %s; see the socket API in SPEC.md", r.Method, r.URL.Path)})
	})
	return mux
}

var errNoSync = errors.New("sync is not available in this build")

func (t *Twin) serveOne(w http.ResponseWriter, r *http.Request, fn func(http.ResponseWriter, *http.Request, Caller) (any, int, error)) {
	start := time.Now()
	p, _ := r.Context().Value(ctxKey{}).(peer)
	if !p.ok {
		writeJSON(w, http.StatusForbidden, api.Error{Error: "the daemon could not tell who you are (no peer credentials); connect over its unix socket"})
		return
	}
	c := t.CallerFor(p.uid, p.gid)
	out, code, err := fn(w, r, c)
	log := t.log.With().Str(logkey.Component, "api").Str(logkey.Request, r.Method+" "+r.URL.Path).
		Int(logkey.UID, p.uid).Logger()
	if err != nil {
		code = HTTPStatus(err)
		msg := userMessage(err)
		if errors.Is(err, errNoSync) {
			code, msg = http.StatusNotImplemented, "no source is configured: set [source] url in the daemon's config and restart it"
		}
		ev := log.Info()
		if code >= 500 {
			ev = log.Error().Err(err)
		}
		ev.Int(logkey.Status, code).Dur(logkey.Duration, time.Since(start)).Msg("request refused")
		writeJSON(w, code, api.Error{Error: msg})
		return
	}
	log.Debug().Int(logkey.Status, code).Dur(logkey.Duration, time.Since(start)).Msg("request served")
	if code == http.StatusNoContent {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, out)
}

// decode reads a JSON body; an empty body is the zero request. A second
// value after the first is refused: a proxy or client that splices bodies
// must not get half of one applied.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return refuse(ErrInvalid, "the request body is not valid JSON for this call (%v); check the client version", err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return refuse(ErrInvalid, "the request body has more after its JSON value; send exactly one JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
