package anonymize

import (
	"bytes"
	"fmt"
)

// arrayT applies a transformer to each element of a PostgreSQL array (text
// form: {a,"b c",NULL} and nested {{..},{..}}), keeping NULL elements, the
// shape and any explicit bounds prefix ([0:1]={...}). A rule on a text[]
// column masks its elements, never the literal as a whole.
type arrayT struct{ t Transformer }

func (a arrayT) Unique() bool { return a.t.Unique() }

func (a arrayT) Append(dst, v []byte) ([]byte, bool, error) {
	start := len(dst)
	if i := bytes.IndexByte(v, '='); i > 0 && v[0] == '[' {
		dst = append(dst, v[:i+1]...)
		v = v[i+1:]
	}
	var err error
	var scratch []byte
	dst, rest, err := a.appendArray(dst, v, &scratch)
	if err != nil || len(bytes.TrimSpace(rest)) != 0 {
		return dst[:start], false, fmt.Errorf("array: %w", errValue)
	}
	return dst, false, nil
}

// appendArray parses one {...} level from v, writing the masked array.
func (a arrayT) appendArray(dst, v []byte, scratch *[]byte) ([]byte, []byte, error) {
	v = bytes.TrimLeft(v, " \t\n\r")
	if len(v) == 0 || v[0] != '{' {
		return dst, v, errValue
	}
	dst = append(dst, '{')
	v = v[1:]
	first := true
	for {
		v = bytes.TrimLeft(v, " \t\n\r")
		if len(v) == 0 {
			return dst, v, errValue
		}
		if v[0] == '}' {
			if !first {
				return dst, v, errValue // "{a,}"
			}
			return append(dst, '}'), v[1:], nil
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		var err error
		if v[0] == '{' {
			if dst, v, err = a.appendArray(dst, v, scratch); err != nil {
				return dst, v, err
			}
		} else {
			var elem []byte
			var quoted bool
			elem, quoted, v, err = arrayElem(v, (*scratch)[:0])
			if err != nil {
				return dst, v, err
			}
			*scratch = elem
			if !quoted && len(elem) == 4 && bytes.EqualFold(elem, []byte("NULL")) {
				dst = append(dst, "NULL"...)
			} else {
				out, null, err := a.t.Append(nil, elem)
				if err != nil {
					return dst, v, err
				}
				if null {
					dst = append(dst, "NULL"...)
				} else {
					dst = appendArrayElem(dst, out)
				}
			}
		}
		v = bytes.TrimLeft(v, " \t\n\r")
		if len(v) == 0 {
			return dst, v, errValue
		}
		switch v[0] {
		case ',':
			v = v[1:]
		case '}':
			return append(dst, '}'), v[1:], nil
		default:
			return dst, v, errValue
		}
	}
}

// arrayElem reads one scalar element: quoted with backslash escapes, or bare
// up to the next , or } (trailing spaces trimmed, backslashes escape).
func arrayElem(v, buf []byte) (elem []byte, quoted bool, rest []byte, err error) {
	if v[0] == '"' {
		i := 1
		for i < len(v) {
			switch v[i] {
			case '\\':
				if i+1 >= len(v) {
					return nil, true, v, errValue
				}
				buf = append(buf, v[i+1])
				i += 2
			case '"':
				return buf, true, v[i+1:], nil
			default:
				buf = append(buf, v[i])
				i++
			}
		}
		return nil, true, v, errValue
	}
	i := 0
	for i < len(v) && v[i] != ',' && v[i] != '}' {
		if v[i] == '\\' && i+1 < len(v) {
			buf = append(buf, v[i+1])
			i += 2
			continue
		}
		if v[i] == '{' || v[i] == '"' {
			return nil, false, v, errValue
		}
		buf = append(buf, v[i])
		i++
	}
	return bytes.TrimRight(buf, " \t\n\r"), false, v[i:], nil
}

// appendArrayElem writes an element as array_out does: quoted when empty,
// "NULL", or containing a delimiter, brace, quote, backslash or space.
func appendArrayElem(dst, e []byte) []byte {
	need := len(e) == 0 || bytes.EqualFold(e, []byte("NULL"))
	for _, c := range e {
		switch c {
		case '{', '}', ',', '"', '\\', ' ', '\t', '\n', '\r', '\v', '\f':
			need = true
		}
	}
	if !need {
		return append(dst, e...)
	}
	dst = append(dst, '"')
	for _, c := range e {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// arrayElements splits an array literal into its scalar elements (NULLs
// left out), for detection on sampled values. nil when it does not parse.
func arrayElements(v []byte) [][]byte {
	c := &collector{}
	if _, _, err := (arrayT{t: c}).Append(nil, v); err != nil {
		return nil
	}
	return c.got
}
