package anonymize

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgtwin/pgtwin/internal/colkey"
)

// BuildPlan classifies every column of cat: masked by a config rule, masked
// because it references a masked column (FK), kept (by rule, by type, or
// because nothing looks like PII), or unclassified PII. policy is
// anonymize.on_unclassified_pii: "fail" leaves unclassified columns in the
// plan (see Plan.Unclassified), "null" and "mask" resolve them.
//
// It refuses (returns an error naming each problem) when a UNIQUE or PRIMARY
// KEY column gets a transformer that does not keep values distinct, when an
// FK's columns would be masked differently, when a rule names a column the
// table does not have, or when a rule fails on the column's sampled values.
func BuildPlan(cat *Catalog, rules Rules, policy string) (*Plan, error) {
	switch policy {
	case "":
		policy = PolicyFail
	case PolicyFail, PolicyNull, PolicyMask:
	default:
		return nil, fmt.Errorf("anonymize.on_unclassified_pii: %q must be fail, null or mask", policy)
	}
	b := &planBuilder{plan: &Plan{Policy: policy}, idx: map[string]*colState{}, ctx: catalogContexts(cat)}
	for ti := range cat.Tables {
		b.addTable(&cat.Tables[ti], rules)
	}
	b.unusedRules(cat, rules)
	b.applyPolicy()
	b.propagateFKs(cat)
	b.checkTransformers()
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return b.plan, nil
}

type colState struct {
	key   string // schema.table.column
	t     *Table
	c     *Column
	cp    *ColumnPlan
	det   *detection
	uniqC []string // PK/UNIQUE constraint labels
	pk    bool
}

type planBuilder struct {
	plan *Plan
	ctx  map[string]*tableContext
	idx  map[string]*colState
	cols []*colState
	errs []error
}

func (b *planBuilder) fail(format string, a ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, a...))
}

func (b *planBuilder) addTable(t *Table, rules Rules) {
	tp := &TablePlan{Schema: t.Schema, Name: t.Name, table: t, Columns: make([]ColumnPlan, len(t.Columns))}
	b.plan.Tables = append(b.plan.Tables, tp)
	cons := map[string][]string{}
	pk := map[string]bool{}
	for _, con := range t.Constraints {
		label := strings.ToUpper(con.Kind) + " " + con.Name
		for _, c := range con.Columns {
			cons[c] = append(cons[c], label)
			if con.Kind == "primary key" {
				pk[c] = true
			}
		}
	}
	for ci := range t.Columns {
		c := &t.Columns[ci]
		key := colkey.Format(t.Schema, t.Name, c.Name)
		cp := &tp.Columns[ci]
		*cp = ColumnPlan{Column: c.Name, Type: c.Type, Constraints: cons[c.Name]}
		st := &colState{key: key, t: t, c: c, cp: cp, uniqC: cons[c.Name], pk: pk[c.Name]}
		b.idx[key] = st
		b.cols = append(b.cols, st)
		st.det = detectColumn(b.ctx[t.QualifiedName()], c)
		keepWhy := ""
		if st.det != nil && st.det.kind == "" {
			// Looked like PII, and the evidence says it is not: kept, and
			// the plan says why.
			keepWhy, st.det = "not PII: "+st.det.reason(), nil
		}
		r, ok := rules[key]
		pk := parentKey(t, c.Name)
		if !ok && pk != "" {
			r, ok = rules[pk]
		}
		if pk != "" && b.idx[pk] == nil {
			// FKs name the partitioned parent; every partition shares its
			// rule, so the first partition stands for it.
			b.idx[pk] = st
		}
		if ok {
			cp.Source = SourceConfig
			if r.Transform == "keep" {
				cp.Action = ActionKeep
				continue
			}
			rr := r
			cp.Action, cp.Rule = ActionMask, &rr
			// A json rule must cover every path where the samples show PII.
			if r.Transform == "json" && st.det != nil && st.det.jsonPaths != nil {
				if un := uncoveredPaths(st.det.jsonPaths, r); len(un) > 0 {
					cp.Action = ActionUnclassified
					cp.Reason = "json rule leaves PII unmasked at " + describePaths(un)
					st.det = &detection{kind: st.det.kind, jsonPaths: un}
					cp.Suggest = suggest(key, mergeJSONRule(r, defaultRule(c, st.det, false)))
				}
			}
			continue
		}
		switch {
		case st.det != nil:
			cp.Action, cp.Source, cp.Reason = ActionUnclassified, SourceDetected, st.det.reason()
			cp.Suggest = suggest(key, defaultRule(c, st.det, len(cons[c.Name]) > 0))
		case keepWhy != "":
			cp.Action, cp.Source, cp.Reason = ActionKeep, SourceDetected, keepWhy
		case textual(c.Base):
			cp.Action, cp.Source = ActionKeep, SourceDetected
			cp.Reason = fmt.Sprintf("no PII detected in name and %d sampled %s", len(c.Samples), plural(len(c.Samples), "value", "values"))
		default:
			cp.Action, cp.Source = ActionKeep, SourceType
			cp.Reason = "not PII: type " + c.Type
		}
	}
}

func mergeJSONRule(have, add Rule) Rule {
	paths := map[string]any{}
	if m, ok := have.Params["paths"].(map[string]any); ok {
		for k, v := range m {
			paths[k] = v
		}
	}
	if m, ok := add.Params["paths"].(map[string]any); ok {
		for k, v := range m {
			paths[k] = v
		}
	}
	out := Rule{Column: have.Column, Transform: "json", Params: map[string]any{}}
	for k, v := range have.Params {
		out.Params[k] = v
	}
	out.Params["paths"] = paths
	return out
}

func (b *planBuilder) unusedRules(cat *Catalog, rules Rules) {
	tables := map[[2]string]*Table{}
	for i := range cat.Tables {
		tables[[2]string{cat.Tables[i].Schema, cat.Tables[i].Name}] = &cat.Tables[i]
	}
	for i := range cat.Tables {
		if ps, pt, ok := splitParent(cat.Tables[i].Parent); ok {
			if _, ok := tables[[2]string{ps, pt}]; !ok {
				tables[[2]string{ps, pt}] = &cat.Tables[i]
			}
		}
	}
	for _, key := range sortedKeys(rules) {
		if _, ok := b.idx[key]; ok {
			continue
		}
		schema, table, column, err := colkey.Parse(key)
		if err != nil {
			continue
		}
		if t, ok := tables[[2]string{schema, table}]; ok {
			b.fail("anonymize.columns.%q: table %s has no column %q", key, t.QualifiedName(), column)
		} else {
			b.plan.Warnings = append(b.plan.Warnings, fmt.Sprintf("anonymize.columns.%q: no such table among the synced tables", key))
		}
	}
}

func (b *planBuilder) applyPolicy() {
	if b.plan.Policy == PolicyFail {
		return
	}
	for _, st := range b.cols {
		cp := st.cp
		if cp.Action != ActionUnclassified {
			continue
		}
		var r Rule
		if b.plan.Policy == PolicyNull {
			r = Rule{Transform: "null"}
		} else {
			r = defaultRule(st.c, st.det, len(st.uniqC) > 0)
			if cp.Rule != nil && cp.Rule.Transform == "json" {
				r = mergeJSONRule(*cp.Rule, r)
			}
		}
		r.Column = st.key
		cp.Action, cp.Rule, cp.Source, cp.Suggest = ActionMask, &r, SourcePolicy, ""
		cp.Reason = "detected: " + st.det.kind
	}
}

// propagateFKs gives every referencing column the treatment of the column it
// references, so masked keys still match. Repeats until nothing changes, for
// chains of FKs.
func (b *planBuilder) propagateFKs(cat *Catalog) {
	reported := map[string]bool{}
	for round := 0; round <= len(b.cols); round++ {
		changed := false
		for ti := range cat.Tables {
			t := &cat.Tables[ti]
			for _, fk := range t.ForeignKeys {
				for i := range fk.Columns {
					if i >= len(fk.RefColumns) {
						break
					}
					child := b.idx[colkey.Format(t.Schema, t.Name, fk.Columns[i])]
					parent := b.idx[colkey.Format(fk.RefSchema, fk.RefTable, fk.RefColumns[i])]
					if child == nil || parent == nil {
						continue
					}
					if b.inherit(child, parent, fk.Name, reported) {
						changed = true
					}
				}
			}
		}
		if !changed {
			return
		}
	}
}

func (b *planBuilder) inherit(child, parent *colState, fkName string, reported map[string]bool) bool {
	cp, pp := child.cp, parent.cp
	origin := parent.key
	if cp.Source == SourceConfig {
		problem := ""
		switch {
		case pp.Action == ActionMask && cp.Action == ActionKeep:
			problem = fmt.Sprintf("keeps values but references %s, which is masked (%s)", parent.key, pp.Rule)
		case pp.Action == ActionMask && cp.Action == ActionMask && cp.Rule.Identity() != pp.Rule.Identity():
			problem = fmt.Sprintf("is masked with %s but references %s, masked with %s", cp.Rule, parent.key, pp.Rule)
		case pp.Action == ActionKeep && cp.Action == ActionMask:
			problem = fmt.Sprintf("is masked with %s but references %s, which is kept", cp.Rule, parent.key)
		}
		if problem != "" && !reported[child.key] {
			reported[child.key] = true
			b.fail("%s: %s (FK %s); remove its rule so it inherits the referenced column's, or give both the same rule", child.key, problem, fkName)
		}
		return false
	}
	want := ColumnPlan{Column: cp.Column, Type: cp.Type, Constraints: cp.Constraints, Action: pp.Action, Rule: pp.Rule, Source: SourceFK, Origin: origin, FK: fkName}
	if pp.Action == ActionUnclassified {
		want.Source = SourceDetected
		want.Reason = "references unclassified " + parent.key
		want.Suggest = "(rule " + parent.key + "; this column inherits it via FK " + fkName + ")"
		want.Origin, want.FK = "", ""
	}
	if cp.Action == want.Action && cp.Source == want.Source && cp.Origin == want.Origin && cp.FK == want.FK && cp.Reason == want.Reason &&
		(cp.Rule == nil) == (want.Rule == nil) && (cp.Rule == nil || cp.Rule.Identity() == want.Rule.Identity()) {
		return false
	}
	*cp = want
	return true
}

// checkTransformers builds each mask column's transformer: parameter errors,
// uniqueness under constraints, and failures on sampled values.
func (b *planBuilder) checkTransformers() {
	key := make([]byte, KeySize)
	for _, st := range b.cols {
		cp := st.cp
		if cp.Action != ActionMask {
			continue
		}
		tr, err := newTransformer(*cp.Rule, key, st.c.ColumnType())
		if err != nil {
			b.fail("%s: %w", st.key, err)
			continue
		}
		cp.Unique = tr.Unique()
		if len(st.uniqC) > 0 && !tr.Unique() {
			nullOK := cp.Rule.Transform == "null" && !st.pk && !st.c.NotNull
			if !nullOK {
				b.fail("%s: %s does not keep distinct values distinct, but the column is in %s; use a unique transformer (email, phone, name with unique = true, hash, uuid, ip) or keep",
					st.key, cp.Rule, strings.Join(st.uniqC, ", "))
			}
		}
		if n, err := sampleErrors(tr, st.c); n > 0 {
			b.fail("%s: %s fails on %d of %d sampled values (%v)", st.key, cp.Rule, n, len(st.c.Samples), err)
		}
	}
}

// suggest is the TOML line that classifies a column.
func suggest(key string, r Rule) string {
	return colkey.TOML(key) + " = " + tomlInline(r)
}

// parentKey is the key of column on t's partitioned parent, "" when t is
// not a partition.
func parentKey(t *Table, column string) string {
	schema, table, ok := splitParent(t.Parent)
	if !ok {
		return ""
	}
	return colkey.Format(schema, table, column)
}

// splitParent splits Table.Parent ("schema.table") at its first dot: a
// parent whose schema name holds a dot is not told apart from one whose
// table name does.
func splitParent(p string) (schema, table string, ok bool) {
	return strings.Cut(p, ".")
}

func tomlInline(r Rule) string {
	var b strings.Builder
	b.WriteString("{ transform = ")
	b.WriteString(strconv.Quote(r.Transform))
	for _, k := range sortedKeys(r.Params) {
		b.WriteString(", ")
		b.WriteString(k)
		b.WriteString(" = ")
		tomlValue(&b, r.Params[k])
	}
	b.WriteString(" }")
	return b.String()
}

func tomlValue(b *strings.Builder, v any) {
	switch x := v.(type) {
	case map[string]any:
		b.WriteString("{ ")
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tomlKey(k))
			b.WriteString(" = ")
			tomlValue(b, x[k])
		}
		b.WriteString(" }")
	case string:
		b.WriteString(strconv.Quote(x))
	default:
		canonical(b, x)
	}
}

func tomlKey(k string) string {
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return strconv.Quote(k)
		}
	}
	return k
}
