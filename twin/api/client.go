package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Client talks to the daemon over its unix socket. The daemon identifies the
// caller by the socket's peer credentials, so a Client carries no token: it
// acts as whichever OS user runs it.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the daemon listening on socketPath. Nothing
// is dialled until the first call.
func NewClient(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	// No overall timeout: create and reset return only when the branch
	// accepts connections, which on the copy driver can take minutes. The
	// caller's context bounds each call.
	return &Client{socket: socketPath, http: &http.Client{
		Transport: tr,
		// The API never redirects; a redirect means the path was cleaned
		// (a "." or ".." part) and following it would hit another route.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Socket is the path the client dials.
func (c *Client) Socket() string { return c.socket }

// StatusError is a non-2xx answer from the daemon.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("daemon answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return e.Message
}

// ErrDaemonUnreachable is wrapped by UnreachableError so callers can test
// for it with errors.Is.
var ErrDaemonUnreachable = errors.New("daemon unreachable")

// UnreachableError says the socket could not be dialled, and why.
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	switch {
	case errors.Is(e.Err, syscall.ENOENT), errors.Is(e.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach the daemon at %s: is it running? (systemctl status pgtwin)", e.Socket)
	case errors.Is(e.Err, syscall.EACCES), errors.Is(e.Err, syscall.EPERM):
		return fmt.Sprintf("permission denied on the daemon's socket %s: ask an admin to add you to its socket group", e.Socket)
	}
	return fmt.Sprintf("cannot reach the daemon at %s: %v", e.Socket, e.Err)
}

func (e *UnreachableError) Unwrap() []error { return []error{ErrDaemonUnreachable, e.Err} }

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ListBranches returns the branches the caller may see.
func (c *Client) ListBranches(ctx context.Context) ([]Branch, error) {
	var bs []Branch
	if err := c.do(ctx, http.MethodGet, "/v1/branches", nil, &bs); err != nil {
		return nil, err
	}
	return bs, nil
}

// GetBranch returns one branch.
func (c *Client) GetBranch(ctx context.Context, name string) (*Branch, error) {
	if err := checkAddressable(name); err != nil {
		return nil, err
	}
	var b Branch
	if err := c.do(ctx, http.MethodGet, branchPath(name), nil, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// CreateBranch makes a branch and returns once it accepts connections.
func (c *Client) CreateBranch(ctx context.Context, req CreateBranchRequest) (*Branch, error) {
	var b Branch
	if err := c.do(ctx, http.MethodPost, "/v1/branches", req, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// ResetBranch puts a branch back to its parent's newest state and returns
// once it accepts connections again.
func (c *Client) ResetBranch(ctx context.Context, name string) (*Branch, error) {
	if err := checkAddressable(name); err != nil {
		return nil, err
	}
	var b Branch
	if err := c.do(ctx, http.MethodPost, branchPath(name)+"/reset", nil, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// DeleteBranch removes a branch, its instance and its volume.
func (c *Client) DeleteBranch(ctx context.Context, name string) error {
	if err := checkAddressable(name); err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, branchPath(name), nil, nil)
}

// UpdateBranch changes a branch's protection or expiry.
func (c *Client) UpdateBranch(ctx context.Context, name string, req UpdateBranchRequest) (*Branch, error) {
	if err := checkAddressable(name); err != nil {
		return nil, err
	}
	var b Branch
	if err := c.do(ctx, http.MethodPatch, branchPath(name), req, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// ListSnapshots returns every snapshot, oldest first as the daemon orders them.
func (c *Client) ListSnapshots(ctx context.Context) ([]Snapshot, error) {
	var ss []Snapshot
	if err := c.do(ctx, http.MethodGet, "/v1/snapshots", nil, &ss); err != nil {
		return nil, err
	}
	return ss, nil
}

// CreateSnapshot takes a snapshot of main now.
func (c *Client) CreateSnapshot(ctx context.Context, req CreateSnapshotRequest) (*Snapshot, error) {
	var s Snapshot
	if err := c.do(ctx, http.MethodPost, "/v1/snapshots", req, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// DeleteSnapshot removes a snapshot that no branch uses.
func (c *Client) DeleteSnapshot(ctx context.Context, id string) error {
	if id == "." || id == ".." {
		return &StatusError{Code: http.StatusBadRequest, Message: fmt.Sprintf("snapshot id %q is not valid", id)}
	}
	return c.do(ctx, http.MethodDelete, "/v1/snapshots/"+url.PathEscape(id), nil, nil)
}

// checkAddressable refuses names that cannot travel in a URL path: a "." or
// ".." part is cleaned away by HTTP servers. No branch can have such a name
// (the daemon refuses to create one), so this only words the error early.
func checkAddressable(name string) error {
	for _, part := range strings.Split(name, "/") {
		if part == "." || part == ".." {
			return &StatusError{Code: http.StatusBadRequest, Message: fmt.Sprintf("branch name %q is not valid: no part between slashes may be \".\" or \"..\"", name)}
		}
	}
	return nil
}

// branchPath escapes the whole name as one path segment: "dev/alice" becomes
// "dev%2Falice", which the server's {name} wildcard decodes back.
func branchPath(name string) string {
	return "/v1/branches/" + url.PathEscape(name)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.doCode(ctx, method, path, in, out)
	return err
}

// doCode is do that also returns the 2xx status code answered.
func (c *Client) doCode(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	// The host is ignored by the dialer; url.Parse keeps the escaped form of
	// the path (RawPath), so %2F reaches the server intact.
	req, err := http.NewRequestWithContext(ctx, method, "http://pgtwin"+path, body)
	if err != nil {
		return 0, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")

	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return 0, &UnreachableError{Socket: c.socket, Err: op.Err}
		}
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, fmt.Errorf("read answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &StatusError{Code: resp.StatusCode}
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			se.Message = e.Error
		} else {
			se.Message = strings.TrimSpace(string(data))
		}
		return resp.StatusCode, se
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 || resp.StatusCode == http.StatusNoContent {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return resp.StatusCode, nil
}
