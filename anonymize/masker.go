package anonymize

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrColumnCount is returned (wrapped) when a row does not have the table's
// number of columns: masking by position would then mask the wrong columns.
var ErrColumnCount = errors.New("row has the wrong number of columns")

// TableMasker masks the rows of one table, in the column order of the
// catalog (which the sync uses as the COPY column list). It is not safe for
// concurrent use: it reuses buffers. Get one per goroutine from Plan.Table.
type TableMasker struct {
	schema, table string
	names         []string
	trs           []Transformer // nil: pass through
	masked        int
	last          int // index of the last masked column
	dec, out      []byte
}

// Table returns the masker for one table of the plan, keyed with key. It
// refuses tables with unclassified PII columns (fail closed).
func (p *Plan) Table(schema, table string, key []byte) (*TableMasker, error) {
	tp := p.table(schema, table)
	if tp == nil {
		return nil, fmt.Errorf("mask %s.%s: table is not in the plan", schema, table)
	}
	if tp.table == nil {
		return nil, fmt.Errorf("mask %s.%s: the plan was not built here (BuildPlan keeps the catalog; a plan decoded from JSON only describes)", schema, table)
	}
	m := &TableMasker{schema: schema, table: table, trs: make([]Transformer, len(tp.Columns))}
	for i, c := range tp.Columns {
		m.names = append(m.names, c.Column)
		switch c.Action {
		case ActionUnclassified:
			return nil, fmt.Errorf("mask %s.%s: column %s: %w", schema, table, c.Column, ErrUnclassified)
		case ActionMask:
			tr, err := newTransformer(*c.Rule, key, tp.table.Columns[i].ColumnType())
			if err != nil {
				return nil, fmt.Errorf("mask %s.%s.%s: %w", schema, table, c.Column, err)
			}
			m.trs[i] = tr
			m.masked++
			m.last = i
		}
	}
	return m, nil
}

// Columns is the column order rows must come in (COPY column list).
func (m *TableMasker) Columns() []string { return m.names }

// Masked reports whether column i is transformed (false: passed through).
func (m *TableMasker) Masked(i int) bool { return i < len(m.trs) && m.trs[i] != nil }

// MaskCopyLine appends the masked form of one COPY text row to dst. line may
// end in a newline; the output ends in one exactly when line does. Columns
// without a rule are copied as raw bytes, never decoded.
func (m *TableMasker) MaskCopyLine(dst, line []byte) ([]byte, error) {
	nl := len(line) > 0 && line[len(line)-1] == '\n'
	if nl {
		line = line[:len(line)-1]
	}
	if m.masked == 0 {
		// Still count fields: a row that does not match the column list means
		// the caller's column order is off, and that must not pass silently.
		if n := bytes.Count(line, tab) + 1; n != len(m.trs) || bytes.IndexByte(line, '\\') >= 0 {
			if got := countFields(line); got != len(m.trs) {
				return dst, m.countErr(got)
			}
		}
		dst = append(dst, line...)
		if nl {
			dst = append(dst, '\n')
		}
		return dst, nil
	}
	// Most rows have no backslash at all: then a tab is always a delimiter
	// and fields need neither a second search nor decoding.
	plain := bytes.IndexByte(line, '\\') < 0
	span := 0 // start of the pass-through bytes not yet copied
	start := 0
	for i := 0; ; i++ {
		if i >= len(m.trs) {
			return dst, m.countErr(countFields(line))
		}
		if i > m.last && plain {
			// Nothing left to mask: count the remaining fields, copy them.
			if n := i + bytes.Count(line[start:], tab) + 1; n != len(m.trs) {
				return dst, m.countErr(n)
			}
			break
		}
		var end int
		var esc bool
		if plain {
			end = bytes.IndexByte(line[start:], '\t')
			if end < 0 {
				end = len(line)
			} else {
				end += start
			}
		} else {
			end, esc = nextField(line, start)
		}
		if tr := m.trs[i]; tr != nil {
			dst = append(dst, line[span:start]...)
			f := line[start:end]
			if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
				dst = append(dst, f...)
			} else {
				v := f
				if esc {
					m.dec = DecodeCopyField(m.dec[:0], f)
					v = m.dec
				}
				var null bool
				var err error
				m.out, null, err = tr.Append(m.out[:0], v)
				if err != nil {
					return dst, fmt.Errorf("mask %s.%s.%s: %w", m.schema, m.table, m.names[i], err)
				}
				if null {
					dst = append(dst, nullField...)
				} else {
					dst = EncodeCopyField(dst, m.out)
				}
			}
			span = end
		}
		if end >= len(line) {
			if i != len(m.trs)-1 {
				return dst, m.countErr(i + 1)
			}
			break
		}
		start = end + 1
	}
	dst = append(dst, line[span:]...)
	if nl {
		dst = append(dst, '\n')
	}
	return dst, nil
}

var tab = []byte{'\t'}

func countFields(line []byte) int {
	n, start := 1, 0
	for {
		end, _ := nextField(line, start)
		if end >= len(line) {
			return n
		}
		n++
		start = end + 1
	}
}

func (m *TableMasker) countErr(got int) error {
	return fmt.Errorf("mask %s.%s: %w: got %d, want %d", m.schema, m.table, ErrColumnCount, got, len(m.trs))
}

// MaskValue masks one value of column i (text representation, nil = NULL),
// as pgoutput text tuples carry them. The result is freshly allocated (nil =
// NULL); unmasked columns return v itself.
func (m *TableMasker) MaskValue(i int, v []byte) ([]byte, error) {
	if i >= len(m.trs) {
		return nil, fmt.Errorf("mask %s.%s: column %d: %w", m.schema, m.table, i, ErrColumnCount)
	}
	tr := m.trs[i]
	if tr == nil || v == nil {
		return v, nil
	}
	out, null, err := tr.Append(make([]byte, 0, len(v)+16), v)
	if err != nil {
		return nil, fmt.Errorf("mask %s.%s.%s: %w", m.schema, m.table, m.names[i], err)
	}
	if null {
		return nil, nil
	}
	return out, nil
}

// MaskValues masks a whole tuple (one value per column, nil = NULL) and
// returns a new slice; vals is not modified. Same output as MaskCopyLine for
// the same values.
func (m *TableMasker) MaskValues(vals [][]byte) ([][]byte, error) {
	if len(vals) != len(m.trs) {
		return nil, m.countErr(len(vals))
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		mv, err := m.MaskValue(i, v)
		if err != nil {
			return nil, err
		}
		out[i] = mv
	}
	return out, nil
}
