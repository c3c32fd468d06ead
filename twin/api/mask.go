package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// MaskPlan is GET /v1/mask/plan: the masking plan for every source column.
type MaskPlan struct {
	// Plan is the plan as package anonymize encodes it (tables, columns,
	// action, rule, reason, suggested config line).
	Plan json.RawMessage `json:"plan"`
	// Text is the plan as `pgtwin mask plan` prints it.
	Text string `json:"text"`
	// Unclassified counts the columns that look like PII and have no rule.
	Unclassified int `json:"unclassified"`
	// Error is the sentence a sync stops with: when Unclassified > 0, or
	// when the source needs what this host lacks (an extension).
	Error string `json:"error,omitempty"`
	// Warnings are selected tables the sync leaves out (a configured
	// publication does not hold them) and the like; Text starts with them.
	Warnings []string `json:"warnings,omitempty"`
}

// MaskCheckRequest is the body of POST /v1/mask/check.
type MaskCheckRequest struct {
	// Branch to scan; empty scans main.
	Branch string `json:"branch,omitempty"`
}

// MaskFinding is one value that looks like escaped PII, redacted.
type MaskFinding struct {
	Schema   string `json:"schema"`
	Table    string `json:"table"`
	Column   string `json:"column"`
	Row      string `json:"row,omitempty"`
	Detector string `json:"detector"`
	Redacted string `json:"redacted"`
}

// MaskCheck is the answer of POST /v1/mask/check.
type MaskCheck struct {
	Target      string        `json:"target"` // "main" or the branch name
	CheckedAt   time.Time     `json:"checked_at"`
	ExactValues int           `json:"exact_values"` // source values looked for
	Findings    []MaskFinding `json:"findings"`
}

// MaskPlan asks the daemon for the masking plan.
func (c *Client) MaskPlan(ctx context.Context) (*MaskPlan, error) {
	var out MaskPlan
	if err := c.do(ctx, http.MethodGet, "/v1/mask/plan", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// MaskCheck asks the daemon to scan main (branch "") or a branch for PII.
func (c *Client) MaskCheck(ctx context.Context, branch string) (*MaskCheck, error) {
	if err := checkAddressable(branch); branch != "" && err != nil {
		return nil, err
	}
	var out MaskCheck
	if err := c.do(ctx, http.MethodPost, "/v1/mask/check", MaskCheckRequest{Branch: branch}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SyncStatus reads the sync's state.
func (c *Client) SyncStatus(ctx context.Context) (*SyncStatus, error) {
	var out SyncStatus
	if err := c.do(ctx, http.MethodGet, "/v1/sync", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Sync starts a sync (dump mode) or takes a snapshot (logical mode), or
// joins the one running; it returns at once with the run's status.
func (c *Client) Sync(ctx context.Context, req SyncRequest) (*SyncStatus, error) {
	var out SyncStatus
	if err := c.do(ctx, http.MethodPost, "/v1/sync", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SyncStop stops logical following (POST /v1/sync/stop).
func (c *Client) SyncStop(ctx context.Context, req SyncStopRequest) (*SyncStatus, error) {
	var out SyncStatus
	if err := c.do(ctx, http.MethodPost, "/v1/sync/stop", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
