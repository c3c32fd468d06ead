package api

import (
	"context"
	"net/http"
	"net/url"
)

// EnsureBranch is create --if-not-exists: the caller's branch of that name
// as it is (existed true), else a new one.
func (c *Client) EnsureBranch(ctx context.Context, req CreateBranchRequest) (b *Branch, existed bool, err error) {
	req.IfNotExists = true
	var out Branch
	code, err := c.doCode(ctx, http.MethodPost, "/v1/branches", req, &out)
	if err != nil {
		return nil, false, err
	}
	return &out, code == http.StatusOK, nil
}

// SetBranchTTL sets a branch's expiry to ttl from now; "0" removes it.
func (c *Client) SetBranchTTL(ctx context.Context, name, ttl string) (*Branch, error) {
	return c.UpdateBranch(ctx, name, UpdateBranchRequest{TTL: &ttl})
}

// RenameBranch renames a branch; its URL stays the same.
func (c *Client) RenameBranch(ctx context.Context, name, to string) (*Branch, error) {
	return c.UpdateBranch(ctx, name, UpdateBranchRequest{Name: &to})
}

// DiffBranch is the schema diff of branch name against other (empty: the
// snapshot it was branched from).
func (c *Client) DiffBranch(ctx context.Context, name, other string) (*SchemaDiff, error) {
	if err := checkAddressable(name); err != nil {
		return nil, err
	}
	path := branchPath(name) + "/diff"
	if other != "" {
		path += "?" + url.Values{"other": {other}}.Encode()
	}
	var d SchemaDiff
	if err := c.do(ctx, http.MethodGet, path, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// SchemaDiff is GET /v1/branches/{name}/diff: what the branch (To) has
// that From has not, as a git-style unified diff and one entry per object.
type SchemaDiff struct {
	From    string         `json:"from"` // "main", a snapshot id or a branch name
	To      string         `json:"to"`
	Changes []SchemaChange `json:"changes"`
	// Diff is the whole unified diff, "" when the schemas are equal.
	Diff string `json:"diff"`
}

// SchemaChange is one object that differs.
type SchemaChange struct {
	Type   string `json:"type"` // as pg_dump names it: TABLE, INDEX, FUNCTION, CONSTRAINT...
	Schema string `json:"schema"`
	Name   string `json:"name"`   // e.g. "users", "users users_pkey", "f(integer)"
	Change string `json:"change"` // added, removed or changed
	Diff   string `json:"diff"`   // this object's hunks
}

// RestoreBranchRequest is the body of POST /v1/branches/{name}/restore.
type RestoreBranchRequest struct {
	At string `json:"at"` // RFC 3339 or relative ("2h"), on the source's clock
}

// RestoreBranch puts a branch back to what its parent held at req.At and
// returns once it accepts connections again.
func (c *Client) RestoreBranch(ctx context.Context, name string, req RestoreBranchRequest) (*Branch, error) {
	if err := checkAddressable(name); err != nil {
		return nil, err
	}
	var b Branch
	if err := c.do(ctx, http.MethodPost, branchPath(name)+"/restore", req, &b); err != nil {
		return nil, err
	}
	return &b, nil
}
