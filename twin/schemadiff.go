package twin

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pgtwin/pgtwin/internal/udiff"
	"github.com/pgtwin/pgtwin/twin/api"
)

// schemaObject is one entry of a pg_dump script: its header names it.
type schemaObject struct {
	typ, schema, name string
	lines             []string // header line first, then its SQL
}

func (o schemaObject) key() string { return o.typ + "\x00" + o.schema + "\x00" + o.name }

func (o schemaObject) label() string {
	if o.schema == "-" || o.schema == "" {
		return o.typ + " " + o.name
	}
	return o.typ + " " + o.schema + "." + o.name
}

var dumpHeaderRE = regexp.MustCompile(`^-- Name: (.+); Type: ([A-Z][A-Z ]*); Schema: (.*); Owner: .*$`)

// parseDump splits a pg_dump plain script into its objects, dropping what
// differs between equal schemas: the session SETs, \restrict keys, the
// banner and owner names in headers.
func parseDump(dump string) []schemaObject {
	var objs []schemaObject
	var cur *schemaObject
	lines := strings.Split(dump, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if m := dumpHeaderRE.FindStringSubmatch(l); m != nil {
			objs = append(objs, schemaObject{typ: m[2], schema: m[3], name: m[1],
				lines: []string{fmt.Sprintf("-- Name: %s; Type: %s; Schema: %s", m[1], m[2], m[3])}})
			cur = &objs[len(objs)-1]
			if i+1 < len(lines) && lines[i+1] == "--" {
				i++ // the header's closing "--"
			}
			continue
		}
		if cur == nil || noise(l) {
			continue
		}
		// A bare "--" frames headers and the closing banner, never SQL.
		if l == "--" {
			continue
		}
		cur.lines = append(cur.lines, l)
	}
	seen := map[string]int{}
	for i := range objs {
		o := &objs[i]
		for len(o.lines) > 1 && strings.TrimSpace(o.lines[len(o.lines)-1]) == "" {
			o.lines = o.lines[:len(o.lines)-1]
		}
		for len(o.lines) > 1 && strings.TrimSpace(o.lines[1]) == "" {
			o.lines = append(o.lines[:1], o.lines[2:]...)
		}
		o.lines = append(o.lines, "")
		if n := seen[o.key()]; n > 0 {
			o.name += fmt.Sprintf(" #%d", n+1)
		}
		seen[o.key()]++
	}
	return objs
}

// noise are lines of a dump that are the same for every schema, or differ
// between two dumps of the same one.
func noise(l string) bool {
	return strings.HasPrefix(l, "SET ") || strings.HasPrefix(l, "SELECT pg_catalog.set_config(") ||
		strings.HasPrefix(l, `\restrict`) || strings.HasPrefix(l, `\unrestrict`) ||
		strings.HasPrefix(l, "-- PostgreSQL database dump") || strings.HasPrefix(l, "-- Dumped from") ||
		strings.HasPrefix(l, "-- Dumped by")
}

// schemaDiff compares two pg_dump scripts: objects are matched by type,
// schema and name (in dump order), then each matched pair line by line.
func schemaDiff(fromName, toName, fromDump, toDump string) api.SchemaDiff {
	a, b := parseDump(fromDump), parseDump(toDump)
	ak := make([]string, len(a))
	for i, o := range a {
		ak[i] = o.key()
	}
	bk := make([]string, len(b))
	for i, o := range b {
		bk[i] = o.key()
	}
	d := api.SchemaDiff{From: fromName, To: toName, Changes: []api.SchemaChange{}}
	var all []udiff.Line
	type span struct {
		obj        schemaObject
		change     string
		start, end int
	}
	var spans []span
	add := func(obj schemaObject, change string, lines []udiff.Line) {
		start := len(all)
		all = append(all, lines...)
		if change != "" {
			spans = append(spans, span{obj, change, start, len(all)})
		}
	}
	for _, e := range udiff.Script(ak, bk) {
		switch e.Op {
		case udiff.Delete:
			add(a[e.A], "removed", whole(a[e.A], udiff.Delete))
		case udiff.Insert:
			add(b[e.B], "added", whole(b[e.B], udiff.Insert))
		default:
			oa, ob := a[e.A], b[e.B]
			var lines []udiff.Line
			changed := false
			for _, le := range udiff.Script(oa.lines, ob.lines) {
				l := udiff.Line{Op: le.Op, Label: ob.label()}
				if le.Op == udiff.Delete {
					l.Text = oa.lines[le.A]
				} else {
					l.Text = ob.lines[le.B]
				}
				changed = changed || le.Op != udiff.Equal
				lines = append(lines, l)
			}
			c := ""
			if changed {
				c = "changed"
			}
			add(ob, c, lines)
		}
	}
	udiff.Number(all)
	for _, s := range spans {
		d.Changes = append(d.Changes, api.SchemaChange{Type: s.obj.typ, Schema: s.obj.schema, Name: s.obj.name,
			Change: s.change, Diff: udiff.Hunks(all[s.start:s.end], 3)})
	}
	if h := udiff.Hunks(all, 3); h != "" {
		d.Diff = fmt.Sprintf("diff --git a/%s b/%s\n--- a/%[1]s\n+++ b/%[2]s\n", fromName, toName) + h
	}
	return d
}

func whole(o schemaObject, op udiff.Op) []udiff.Line {
	out := make([]udiff.Line, len(o.lines))
	for i, l := range o.lines {
		out[i] = udiff.Line{Op: op, Text: l, Label: o.label()}
	}
	return out
}
