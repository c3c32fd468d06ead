package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pgtwin/pgtwin/internal/colkey"
)

// Subset sync keys: [sync.subset] maps "schema.table" to a SQL filter,
// sync.subset_skip_referencing lists foreign keys not followed from the
// referenced rows back to the rows that reference them, and
// sync.subset_foreign_keys declares foreign keys the application keeps but
// the source's catalog does not know. Table and column parts are written as
// in [anonymize.columns] keys: a part holding a dot or quote in double
// quotes.

// ForeignKey is one sync.subset_foreign_keys entry,
// "schema.table(col, ...) -> schema.table(col, ...)": the child's columns
// reference the parent's, in order.
type ForeignKey struct {
	ChildSchema, ChildTable   string
	ChildColumns              []string
	ParentSchema, ParentTable string
	ParentColumns             []string
}

// String is the entry in canonical form (what ParseForeignKey reads back).
func (f ForeignKey) String() string {
	side := func(s, t string, cols []string) string {
		q := make([]string, len(cols))
		for i, c := range cols {
			q[i] = colPart(c)
		}
		return colkey.Part(s) + "." + colkey.Part(t) + "(" + strings.Join(q, ", ") + ")"
	}
	return side(f.ChildSchema, f.ChildTable, f.ChildColumns) + " -> " + side(f.ParentSchema, f.ParentTable, f.ParentColumns)
}

// colPart quotes a column that holds what the entry's syntax uses.
func colPart(c string) string {
	if c != "" && !strings.ContainsAny(c, `.",() `) && !strings.Contains(c, "->") {
		return c
	}
	return `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
}

var errTableKey = errors.New(`must be schema.table (a part holding a dot or quote goes in double quotes, e.g. app."order.items")`)

// ParseTableKey splits a [sync.subset] key, "schema.table", undoing quoting.
func ParseTableKey(key string) (schema, table string, err error) {
	// A table key is a column key without its column: borrow colkey's rules.
	s, t, _, err := colkey.Parse(key + ".x")
	if err != nil {
		return "", "", errTableKey
	}
	return s, t, nil
}

// ParseConstraintKey splits a sync.subset_skip_referencing entry,
// "schema.table.constraint" (the table the constraint is on: the
// referencing one).
func ParseConstraintKey(key string) (schema, table, constraint string, err error) {
	s, t, c, err := colkey.Parse(key)
	if err != nil {
		return "", "", "", errors.New(`must be schema.table.constraint, the referencing table and its foreign key constraint (a part holding a dot or quote goes in double quotes)`)
	}
	return s, t, c, nil
}

var errForeignKey = errors.New(`must be "schema.table(column, ...) -> schema.table(column, ...)", the referencing columns then the referenced ones, as many on each side`)

// ParseForeignKey reads a sync.subset_foreign_keys entry.
func ParseForeignKey(s string) (ForeignKey, error) {
	child, parent, ok := cutOutsideQuotes(s, "->")
	if !ok {
		return ForeignKey{}, errForeignKey
	}
	var f ForeignKey
	var err error
	if f.ChildSchema, f.ChildTable, f.ChildColumns, err = parseFKSide(child); err != nil {
		return ForeignKey{}, err
	}
	if f.ParentSchema, f.ParentTable, f.ParentColumns, err = parseFKSide(parent); err != nil {
		return ForeignKey{}, err
	}
	if len(f.ChildColumns) != len(f.ParentColumns) {
		return ForeignKey{}, fmt.Errorf("%d referencing columns but %d referenced: %w", len(f.ChildColumns), len(f.ParentColumns), errForeignKey)
	}
	return f, nil
}

func parseFKSide(s string) (schema, table string, cols []string, err error) {
	s = strings.TrimSpace(s)
	name, list, ok := cutOutsideQuotes(s, "(")
	if !ok || !strings.HasSuffix(list, ")") {
		return "", "", nil, errForeignKey
	}
	if schema, table, err = ParseTableKey(strings.TrimSpace(name)); err != nil {
		return "", "", nil, fmt.Errorf("%q: table %w", name, err)
	}
	rest := strings.TrimSuffix(list, ")")
	for {
		part, more, found := cutOutsideQuotes(rest, ",")
		c, err := unquoteColumn(strings.TrimSpace(part))
		if err != nil {
			return "", "", nil, err
		}
		cols = append(cols, c)
		if !found {
			return schema, table, cols, nil
		}
		rest = more
	}
}

func unquoteColumn(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty column name: " + errForeignKey.Error())
	}
	if !strings.HasPrefix(s, `"`) {
		if strings.ContainsAny(s, `"() `) {
			return "", fmt.Errorf("column %q: a column holding quotes, spaces or parentheses goes in double quotes", s)
		}
		return s, nil
	}
	if len(s) < 3 || !strings.HasSuffix(s, `"`) {
		return "", fmt.Errorf("column %s: unclosed or empty double quote", s)
	}
	inner := s[1 : len(s)-1]
	if strings.Contains(strings.ReplaceAll(inner, `""`, ""), `"`) {
		return "", fmt.Errorf("column %s: a quote inside a quoted column is written twice", s)
	}
	return strings.ReplaceAll(inner, `""`, `"`), nil
}

// cutOutsideQuotes is strings.Cut that ignores sep inside double quotes.
func cutOutsideQuotes(s, sep string) (before, after string, found bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			quoted = !quoted
			continue
		}
		if !quoted && strings.HasPrefix(s[i:], sep) {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// validateSubset checks the subset keys: called by Validate with the
// [sync] values.
func validateSubset(mode string, subset map[string]string, skip, fks []string) error {
	if len(subset) > 0 && mode != "dump" {
		return bad("sync.subset", subsetKeys(subset), "sync.subset works in dump mode only: logical mode follows every change of every row, so set sync.mode = \"dump\" or empty [sync.subset]")
	}
	for _, k := range subsetKeys(subset) {
		if _, _, err := ParseTableKey(k); err != nil {
			return bad("sync.subset", k, "key "+err.Error())
		}
		if strings.TrimSpace(subset[k]) == "" {
			return bad(fmt.Sprintf("sync.subset.%q", k), subset[k], `must be a SQL condition on the table's rows (e.g. "created_at > now() - interval '30 days'"); "true" takes every row`)
		}
	}
	declared := map[string]bool{}
	for _, s := range fks {
		f, err := ParseForeignKey(s)
		if err != nil {
			return bad("sync.subset_foreign_keys", s, err.Error())
		}
		declared[f.String()] = true
	}
	for _, s := range skip {
		if f, err := ParseForeignKey(s); err == nil && declared[f.String()] {
			continue // a declared foreign key is named by its entry
		}
		if _, _, _, err := ParseConstraintKey(s); err != nil {
			return bad("sync.subset_skip_referencing", s, err.Error()+", or an entry of sync.subset_foreign_keys")
		}
	}
	return nil
}

func subsetKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
