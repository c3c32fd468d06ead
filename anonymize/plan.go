package anonymize

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pgtwin/pgtwin/internal/colkey"
)

// Policies for columns detected as PII that no rule covers
// (anonymize.on_unclassified_pii).
const (
	PolicyFail = "fail"
	PolicyNull = "null"
	PolicyMask = "mask"
)

// Action is what happens to a column's values.
type Action string

const (
	ActionKeep         Action = "keep"
	ActionMask         Action = "mask"
	ActionUnclassified Action = "unclassified"
)

// Where a column's decision came from.
const (
	SourceConfig   = "config"    // a rule in anonymize.columns
	SourceFK       = "fk"        // inherited from the referenced column
	SourcePolicy   = "policy"    // on_unclassified_pii = null|mask
	SourceType     = "type"      // kept: the type cannot hold PII
	SourceDetected = "detection" // kept: nothing detected / unclassified: detected
)

// ColumnPlan is the decision for one column.
type ColumnPlan struct {
	Column string `json:"column"`
	Type   string `json:"type"`
	Action Action `json:"action"`
	// Rule is the transformer applied (mask only).
	Rule *Rule `json:"rule,omitempty"`
	// Unique: the transformer keeps distinct values distinct.
	Unique bool   `json:"unique"`
	Source string `json:"source"`
	// Origin names the referenced column for FK-inherited decisions
	// ("public.users.email"), FK the constraint.
	Origin string `json:"origin,omitempty"`
	FK     string `json:"fk,omitempty"`
	// Reason says why: what detection found, or why no mask is needed.
	Reason string `json:"reason,omitempty"`
	// Constraints lists the PK/UNIQUE constraints the column is part of.
	Constraints []string `json:"constraints,omitempty"`
	// Suggest is the config line to add for an unclassified column.
	Suggest string `json:"suggest,omitempty"`
}

// Summary is the one-line action text of `pgtwin mask plan`.
func (c ColumnPlan) Summary() string {
	switch c.Action {
	case ActionMask:
		s := "mask: " + c.Rule.String()
		if c.Unique {
			s += " (unique)"
		}
		switch c.Source {
		case SourceFK:
			s += " from FK " + c.Origin + " (" + c.FK + ")"
		case SourcePolicy:
			s += " [on_unclassified_pii; " + c.Reason + "]"
		}
		return s
	case ActionUnclassified:
		return "UNCLASSIFIED PII (reason: " + c.Reason + ")"
	}
	switch c.Source {
	case SourceConfig:
		return "keep (config)"
	case SourceFK:
		return "keep (references " + c.Origin + ", which is kept; " + c.FK + ")"
	}
	if c.Reason != "" {
		return "keep (" + c.Reason + ")"
	}
	return "keep"
}

// TablePlan is the plan for one table, columns in COPY order.
type TablePlan struct {
	Schema  string       `json:"schema"`
	Name    string       `json:"name"`
	Columns []ColumnPlan `json:"columns"`
	table   *Table
}

// Plan classifies every column of every table to be synced.
type Plan struct {
	Policy   string       `json:"policy"`
	Tables   []*TablePlan `json:"tables"`
	Warnings []string     `json:"warnings,omitempty"`
}

// Unclassified lists the columns detected as PII that no rule covers, each
// named by its rule key (colkey.Format) with its plan.
func (p *Plan) Unclassified() []ColumnPlan {
	var out []ColumnPlan
	for _, t := range p.Tables {
		for _, c := range t.Columns {
			if c.Action == ActionUnclassified {
				c.Column = colkey.Format(t.Schema, t.Name, c.Column)
				out = append(out, c)
			}
		}
	}
	return out
}

// ErrUnclassified is returned (wrapped) when rows are asked for a table that
// has unclassified PII columns: nothing is copied until a rule covers them.
var ErrUnclassified = errors.New("unclassified PII")

// UnclassifiedError is the sentence a sync stops with, naming every column
// and the rule to add. nil when there is none.
func (p *Plan) UnclassifiedError() error {
	u := p.Unclassified()
	if len(u) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s look like PII and have no rule; add rules under [anonymize.columns] (or set anonymize.on_unclassified_pii = \"null\" or \"mask\"):",
		len(u), plural(len(u), "column", "columns"))
	for _, c := range u {
		fmt.Fprintf(&b, "\n  %s (%s): %s", c.Column, c.Reason, c.Suggest)
	}
	return fmt.Errorf("%w: %s", ErrUnclassified, b.String())
}

func (p *Plan) table(schema, name string) *TablePlan {
	for _, t := range p.Tables {
		if t.Schema == schema && t.Name == name {
			return t
		}
	}
	return nil
}

// WriteText prints the plan as `pgtwin mask plan` shows it: every column with
// its type and action, table by table.
func (p *Plan) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, t := range p.Tables {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "%s.%s\n", t.Schema, t.Name)
		for _, c := range t.Columns {
			cons := ""
			if len(c.Constraints) > 0 {
				cons = "[" + strings.Join(c.Constraints, ", ") + "]"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Column, c.Type, cons, c.Summary())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range p.Warnings {
		if _, err := fmt.Fprintf(w, "warning: %s\n", warn); err != nil {
			return err
		}
	}
	u := p.Unclassified()
	if len(u) > 0 {
		fmt.Fprintf(w, "\n%d unclassified PII %s (on_unclassified_pii = %q); add to [anonymize.columns]:\n", len(u), plural(len(u), "column", "columns"), p.Policy)
		for _, c := range u {
			fmt.Fprintf(w, "  %s\n", c.Suggest)
		}
	}
	return nil
}

func (p *Plan) String() string {
	var b strings.Builder
	p.WriteText(&b)
	return b.String()
}
