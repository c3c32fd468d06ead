package anonymize

// Catalog describes the source tables to be synced: what twinsync.ReadCatalog
// reads from the source and BuildPlan classifies. It carries no connection.
type Catalog struct {
	Tables []Table `json:"tables"`
}

// Table is one table with its columns in attribute order (the order COPY
// writes them in).
type Table struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	// Parent is "schema.table" of the partitioned table this leaf partition
	// belongs to (the root), empty otherwise. Rules on the parent's columns
	// apply to every partition, and FKs to the parent resolve to them.
	Parent      string       `json:"parent,omitempty"`
	Columns     []Column     `json:"columns"`
	Constraints []Constraint `json:"constraints,omitempty"`
	ForeignKeys []ForeignKey `json:"foreign_keys,omitempty"`
}

// Column is one column. Samples are a bounded sample of the column's values
// in text form, for detection and the leak check; they live in memory only
// and are never serialised.
type Column struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`      // format_type(), e.g. "numeric(10,2)"
	Base    string   `json:"base_type"` // pg_type.typname, e.g. "numeric", "_text"
	Typmod  int32    `json:"typmod"`
	NotNull bool     `json:"not_null"`
	Samples [][]byte `json:"-"`
}

// Constraint is a PRIMARY KEY or UNIQUE constraint (or unique index).
type Constraint struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"` // "primary key" or "unique"
	Columns []string `json:"columns"`
}

// ForeignKey is Columns referencing RefColumns of RefSchema.RefTable,
// pairwise.
type ForeignKey struct {
	Name       string   `json:"name"`
	Columns    []string `json:"columns"`
	RefSchema  string   `json:"ref_schema"`
	RefTable   string   `json:"ref_table"`
	RefColumns []string `json:"ref_columns"`
}

// ColumnType derives the type facts transformers need from the catalog.
func (c Column) ColumnType() ColumnType {
	ct := ColumnType{Base: c.Base, Scale: -1, NotNull: c.NotNull}
	switch c.Base {
	case "numeric":
		if c.Typmod >= 4 {
			m := c.Typmod - 4
			ct.Precision = int(m>>16) & 0xffff
			ct.Scale = int(int16(m & 0xffff))
		}
	case "varchar", "bpchar":
		if c.Typmod >= 4 {
			ct.Length = int(c.Typmod - 4)
		}
	}
	return ct
}

func (t *Table) column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// QualifiedName is "schema.table".
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }
