package api

import (
	"context"
	"net/http"
)

// SuspendBranch stops a branch's instance; its URL keeps working and the
// next connection starts it again.
func (c *Client) SuspendBranch(ctx context.Context, name string) (*Branch, error) {
	return c.branchAction(ctx, name, "suspend")
}

// ResumeBranch starts a suspended branch and returns once it accepts
// connections.
func (c *Client) ResumeBranch(ctx context.Context, name string) (*Branch, error) {
	return c.branchAction(ctx, name, "resume")
}

func (c *Client) branchAction(ctx context.Context, name, action string) (*Branch, error) {
	if err := checkAddressable(name); err != nil {
		return nil, err
	}
	var b Branch
	if err := c.do(ctx, http.MethodPost, branchPath(name)+"/"+action, nil, &b); err != nil {
		return nil, err
	}
	return &b, nil
}
