package pgoutput

import "testing"

func rel(ident byte, cols ...RelationColumn) *Relation {
	return &Relation{RelationID: 7, Namespace: "public", RelationName: "users", ReplicaIdentity: ident, Columns: cols}
}

var (
	colID    = RelationColumn{Flags: ColumnFlagKey, Name: "id", DataType: 23, TypeModifier: -1}
	colEmail = RelationColumn{Name: "email", DataType: 25, TypeModifier: -1}
	colAge   = RelationColumn{Name: "age", DataType: 23, TypeModifier: -1}
)

func TestRelationSetDiff(t *testing.T) {
	s := NewRelationSet()
	if d := s.Add(rel('d', colID, colEmail)); !d.New || d.Empty() || d.OnlyAdded() {
		t.Fatalf("first description: %+v", d)
	}
	if r, ok := s.Get(7); !ok || len(r.Columns) != 2 || s.Len() != 1 {
		t.Fatalf("get = %+v, %v", r, ok)
	}
	if d := s.Add(rel('d', colID, colEmail)); !d.Empty() {
		t.Fatalf("same description again: %+v", d)
	}
	d := s.Add(rel('d', colID, colEmail, colAge))
	if !d.OnlyAdded() || len(d.Added) != 1 || d.Added[0].Name != "age" || d.Reordered {
		t.Fatalf("added column: %+v", d)
	}

	cases := []struct {
		name  string
		old   *Relation
		cur   *Relation
		check func(RelationDiff) bool
	}{
		{"removed", rel('d', colID, colEmail, colAge), rel('d', colID, colAge),
			func(d RelationDiff) bool {
				return len(d.Removed) == 1 && d.Removed[0].Name == "email" && !d.Reordered && !d.OnlyAdded()
			}},
		{"type changed", rel('d', colID, colAge), rel('d', colID, RelationColumn{Name: "age", DataType: 20, TypeModifier: -1}),
			func(d RelationDiff) bool {
				return len(d.Changed) == 1 && d.Changed[0].Old.DataType == 23 && d.Changed[0].New.DataType == 20 && !d.OnlyAdded()
			}},
		{"typmod changed", rel('d', colID, RelationColumn{Name: "v", DataType: 1043, TypeModifier: 14}), rel('d', colID, RelationColumn{Name: "v", DataType: 1043, TypeModifier: 24}),
			func(d RelationDiff) bool { return len(d.Changed) == 1 }},
		{"identity changed", rel('d', colID, colEmail), rel('f', RelationColumn{Flags: 1, Name: "id", DataType: 23, TypeModifier: -1}, RelationColumn{Flags: 1, Name: "email", DataType: 25, TypeModifier: -1}),
			func(d RelationDiff) bool {
				return d.ReplicaIdentityChanged && len(d.Changed) == 1 && d.Changed[0].New.IsKey()
			}},
		{"dropped and re-added moves to the end", rel('d', colID, colEmail, colAge), rel('d', colID, colAge, colEmail),
			func(d RelationDiff) bool {
				return d.Reordered && len(d.Added) == 0 && len(d.Removed) == 0 && !d.OnlyAdded()
			}},
		{"renamed column", rel('d', colID, colEmail), rel('d', colID, RelationColumn{Name: "mail", DataType: 25, TypeModifier: -1}),
			func(d RelationDiff) bool { return len(d.Added) == 1 && len(d.Removed) == 1 && !d.OnlyAdded() }},
		{"renamed table", rel('d', colID), &Relation{RelationID: 7, Namespace: "app", RelationName: "users", ReplicaIdentity: 'd', Columns: []RelationColumn{colID}},
			func(d RelationDiff) bool { return d.Renamed && !d.Empty() }},
	}
	for _, c := range cases {
		if d := DiffRelations(c.old, c.cur); !c.check(d) {
			t.Errorf("%s: %+v", c.name, d)
		}
	}
	var zero RelationSet
	if d := zero.Add(rel('d', colID)); !d.New {
		t.Fatalf("zero RelationSet: %+v", d)
	}
}
