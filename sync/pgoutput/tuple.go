package pgoutput

// Kinds of TupleColumn.
const (
	TupleNull      = 'n'
	TupleUnchanged = 'u' // unchanged TOASTed value, not sent: leave it as it is
	TupleText      = 't'
	TupleBinary    = 'b'
)

// Tuple is a row's values in its Relation's column order.
type Tuple []TupleColumn

// TupleColumn is one value. Data points into the decoded message (no copy)
// and is set only for TupleText and TupleBinary.
type TupleColumn struct {
	Kind byte
	Data []byte
}

// IsNull reports a SQL NULL.
func (c TupleColumn) IsNull() bool { return c.Kind == TupleNull }

// IsUnchanged reports an unchanged TOASTed value that was not sent; an
// UPDATE must leave the column out, never set it to NULL.
func (c TupleColumn) IsUnchanged() bool { return c.Kind == TupleUnchanged }
