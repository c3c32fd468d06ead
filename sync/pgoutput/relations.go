package pgoutput

// RelationSet caches the Relation messages of a session. The server sends a
// relation's description before its first change and again after its
// definition changed, so a new Relation diffed against the cached one is how
// the apply side sees schema changes.
type RelationSet struct {
	m map[uint32]*Relation
}

// NewRelationSet returns an empty set.
func NewRelationSet() *RelationSet { return &RelationSet{m: map[uint32]*Relation{}} }

// Get returns the cached description of a relation.
func (s *RelationSet) Get(id uint32) (*Relation, bool) {
	r, ok := s.m[id]
	return r, ok
}

// Len is the number of cached relations.
func (s *RelationSet) Len() int { return len(s.m) }

// Add caches r, replacing any earlier description of the same relation, and
// reports how r differs from it. The set keeps r: do not change it after.
func (s *RelationSet) Add(r *Relation) RelationDiff {
	old := s.m[r.RelationID]
	if s.m == nil {
		s.m = map[uint32]*Relation{}
	}
	s.m[r.RelationID] = r
	return DiffRelations(old, r)
}

// RelationDiff is how a relation's new description differs from the cached
// one. Columns are matched by name.
type RelationDiff struct {
	RelationID uint32
	// New is true when nothing was cached; the rest is then empty.
	New bool
	// Renamed is true when the schema or table name changed.
	Renamed bool
	// ReplicaIdentityChanged is true when the replica identity setting
	// changed (key flags of columns may change with it; see Changed).
	ReplicaIdentityChanged bool
	Added                  []RelationColumn
	Removed                []RelationColumn
	Changed                []ColumnChange
	// Reordered is true when columns present in both changed their relative
	// order, or a new column sits before an old one (a column dropped and
	// added again moves to the end): tuple positions no longer map to the
	// same names.
	Reordered bool
}

// ColumnChange is a column whose type, type modifier or key flag changed.
type ColumnChange struct {
	Old, New RelationColumn
}

// Empty reports no difference (and a relation already known).
func (d RelationDiff) Empty() bool {
	return !d.New && !d.Renamed && !d.ReplicaIdentityChanged && len(d.Added) == 0 &&
		len(d.Removed) == 0 && len(d.Changed) == 0 && !d.Reordered
}

// OnlyAdded reports a known relation whose only change is columns appended
// at the end (ALTER TABLE ADD COLUMN), which can be applied without resync.
func (d RelationDiff) OnlyAdded() bool {
	return !d.New && len(d.Added) > 0 && !d.Renamed && !d.ReplicaIdentityChanged &&
		len(d.Removed) == 0 && len(d.Changed) == 0 && !d.Reordered
}

// DiffRelations compares two descriptions of one relation; old may be nil.
func DiffRelations(old, cur *Relation) RelationDiff {
	d := RelationDiff{RelationID: cur.RelationID}
	if old == nil {
		d.New = true
		return d
	}
	d.Renamed = old.Namespace != cur.Namespace || old.RelationName != cur.RelationName
	d.ReplicaIdentityChanged = old.ReplicaIdentity != cur.ReplicaIdentity

	oldAt := make(map[string]int, len(old.Columns))
	for i, c := range old.Columns {
		oldAt[c.Name] = i
	}
	curAt := make(map[string]int, len(cur.Columns))
	for i, c := range cur.Columns {
		curAt[c.Name] = i
	}
	for _, c := range old.Columns {
		if _, ok := curAt[c.Name]; !ok {
			d.Removed = append(d.Removed, c)
		}
	}
	// Columns in both lists must keep their relative order, and added ones
	// must come after all of them, for old tuple positions to keep meaning.
	lastOld, sawAdded := -1, false
	for _, c := range cur.Columns {
		j, ok := oldAt[c.Name]
		if !ok {
			d.Added = append(d.Added, c)
			sawAdded = true
			continue
		}
		if j < lastOld || sawAdded {
			d.Reordered = true
		}
		lastOld = j
		o := old.Columns[j]
		if o.DataType != c.DataType || o.TypeModifier != c.TypeModifier || o.Flags != c.Flags {
			d.Changed = append(d.Changed, ColumnChange{Old: o, New: c})
		}
	}
	return d
}
