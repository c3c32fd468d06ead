package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveUnix runs handler on a unix socket in a temp dir, the way the daemon
// serves the API, and returns the socket's path.
func serveUnix(t *testing.T, handler http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestClientEscapesBranchNames(t *testing.T) {
	mux := http.NewServeMux()
	var got []string
	mux.HandleFunc("GET /v1/branches/{name}", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "get "+r.PathValue("name"))
		json.NewEncoder(w).Encode(Branch{Name: r.PathValue("name"), State: StateReady})
	})
	mux.HandleFunc("POST /v1/branches/{name}/reset", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "reset "+r.PathValue("name"))
		json.NewEncoder(w).Encode(Branch{Name: r.PathValue("name"), State: StateReady})
	})
	mux.HandleFunc("DELETE /v1/branches/{name}", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "delete "+r.PathValue("name"))
		w.WriteHeader(http.StatusNoContent)
	})
	c := NewClient(serveUnix(t, mux))
	ctx := context.Background()

	for _, name := range []string{"dev/alice", "preview/pr-42/x", "a b", "100%"} {
		b, err := c.GetBranch(ctx, name)
		if err != nil {
			t.Fatalf("get %q: %v", name, err)
		}
		if b.Name != name {
			t.Errorf("get %q: server saw %q", name, b.Name)
		}
		if b, err = c.ResetBranch(ctx, name); err != nil || b.Name != name {
			t.Errorf("reset %q: %v, server saw %q", name, err, b.Name)
		}
		if err := c.DeleteBranch(ctx, name); err != nil {
			t.Errorf("delete %q: %v", name, err)
		}
	}
	want := "get dev/alice,reset dev/alice,delete dev/alice,get preview/pr-42/x,reset preview/pr-42/x,delete preview/pr-42/x,get a b,reset a b,delete a b,get 100%,reset 100%,delete 100%"
	if strings.Join(got, ",") != want {
		t.Errorf("server saw\n %s\nwant\n %s", strings.Join(got, ","), want)
	}
}

func TestClientBodiesAndErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/branches", func(w http.ResponseWriter, r *http.Request) {
		var req CreateBranchRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		if req.Name == "taken" {
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(Error{Error: `branch "taken" already exists: pick another name`})
			return
		}
		exp := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
		json.NewEncoder(w).Encode(Branch{Name: req.Name, Parent: req.Parent, Protected: req.Protect, ExpiresAt: &exp})
	})
	mux.HandleFunc("PATCH /v1/branches/{name}", func(w http.ResponseWriter, r *http.Request) {
		var req UpdateBranchRequest
		json.NewDecoder(r.Body).Decode(&req)
		json.NewEncoder(w).Encode(Branch{Name: r.PathValue("name"), Protected: req.Protected != nil && *req.Protected})
	})
	mux.HandleFunc("GET /v1/branches", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"name":"a","expires_at":null},{"name":"b/c","port":6501}]`))
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	c := NewClient(serveUnix(t, mux))
	ctx := context.Background()

	b, err := c.CreateBranch(ctx, CreateBranchRequest{Name: "dev/x", Parent: "main", Protect: true})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if b.Name != "dev/x" || b.Parent != "main" || !b.Protected || b.ExpiresAt == nil {
		t.Errorf("create: got %+v", b)
	}

	_, err = c.CreateBranch(ctx, CreateBranchRequest{Name: "taken"})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict || !strings.Contains(se.Message, "already exists") {
		t.Errorf("create taken: got %v, want a 409 StatusError with the server's message", err)
	}

	yes := true
	if b, err = c.UpdateBranch(ctx, "dev/x", UpdateBranchRequest{Protected: &yes}); err != nil || !b.Protected {
		t.Errorf("update: %v %+v", err, b)
	}

	bs, err := c.ListBranches(ctx)
	if err != nil || len(bs) != 2 || bs[1].Name != "b/c" || bs[1].Port != 6501 || bs[0].ExpiresAt != nil {
		t.Errorf("list: %v %+v", err, bs)
	}

	_, err = c.Status(ctx)
	if !errors.As(err, &se) || se.Code != 500 || se.Message != "boom" {
		t.Errorf("status: got %v, want a 500 StatusError \"boom\" (plain-text body)", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.sock")
	_, err := NewClient(missing).ListBranches(context.Background())
	if !errors.Is(err, ErrDaemonUnreachable) {
		t.Fatalf("missing socket: got %v, want ErrDaemonUnreachable", err)
	}
	if !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "is it running") {
		t.Errorf("missing socket: message %q should name the socket and ask whether the daemon runs", err)
	}

	// A socket file nobody listens on: connection refused.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("stale socket file should remain: %v", err)
	}
	_, err = NewClient(stale).Status(context.Background())
	if !errors.Is(err, ErrDaemonUnreachable) || !strings.Contains(err.Error(), "is it running") {
		t.Errorf("stale socket: got %v, want ErrDaemonUnreachable saying is it running", err)
	}
}

// The server's mux takes the rest of the path as the name ({name...}), as
// package twin does; dot parts never reach it.
func TestClientRestOfPathNames(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/branches/{name...}", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(Branch{Name: r.PathValue("name")})
	})
	mux.HandleFunc("POST /v1/branches/{name...}", func(w http.ResponseWriter, r *http.Request) {
		name, _ := strings.CutSuffix(r.PathValue("name"), "/reset")
		json.NewEncoder(w).Encode(Branch{Name: name})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(Error{Error: "no route " + r.URL.Path})
	})
	c := NewClient(serveUnix(t, mux))
	ctx := context.Background()
	for _, name := range []string{"dev/alice", "x/reset", "a.b/c..d"} {
		if b, err := c.GetBranch(ctx, name); err != nil || b.Name != name {
			t.Errorf("get %q: %v %+v", name, err, b)
		}
		if b, err := c.ResetBranch(ctx, name); err != nil || b.Name != name {
			t.Errorf("reset %q: %v %+v", name, err, b)
		}
	}
	for _, name := range []string{"..", "dev/../x", "./a"} {
		_, err := c.GetBranch(ctx, name)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, name) {
			t.Errorf("get %q: got %v, want a 400 naming it", name, err)
		}
		if err := c.DeleteBranch(ctx, name); !errors.As(err, &se) || se.Code != 400 {
			t.Errorf("delete %q: got %v, want 400", name, err)
		}
	}
}
