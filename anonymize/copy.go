package anonymize

import "bytes"

// COPY text format, as PostgreSQL writes it (copyto.c CopyAttributeOutText)
// and reads it (copyfromparse.c CopyReadAttributesText): fields separated by
// a tab, a row ends with a newline, `\N` is NULL, and a backslash escapes the
// next character (\b \f \n \r \t \v, octal \ooo, hex \xhh, anything else
// stands for itself).

var nullField = []byte(`\N`)

// nextField returns the end of the field starting at start (the index of the
// delimiter or len(line)) and whether the field contains a backslash. A tab
// preceded by a backslash is data, never a delimiter.
func nextField(line []byte, start int) (end int, esc bool) {
	i := start
	for {
		t := bytes.IndexByte(line[i:], '\t')
		if t < 0 {
			t = len(line) - i
		}
		b := bytes.IndexByte(line[i:i+t], '\\')
		if b < 0 {
			return i + t, esc
		}
		esc = true
		i += b + 2 // skip the backslash and the character it escapes
		if i >= len(line) {
			return len(line), esc
		}
	}
}

// DecodeCopyField appends the value of one COPY text field (escapes
// resolved) to dst. It does not treat `\N` specially: callers check for NULL
// first.
func DecodeCopyField(dst, f []byte) []byte {
	for len(f) > 0 {
		b := bytes.IndexByte(f, '\\')
		if b < 0 {
			return append(dst, f...)
		}
		dst = append(dst, f[:b]...)
		f = f[b+1:]
		if len(f) == 0 {
			// A trailing lone backslash: PostgreSQL would reject the row;
			// keep it so the row fails where it is loaded, not here.
			return append(dst, '\\')
		}
		c := f[0]
		f = f[1:]
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := c - '0'
			for k := 0; k < 2 && len(f) > 0 && f[0] >= '0' && f[0] <= '7'; k++ {
				v = v<<3 | (f[0] - '0')
				f = f[1:]
			}
			dst = append(dst, v)
		case 'x':
			if len(f) > 0 && isHex(f[0]) {
				v := unhex(f[0])
				f = f[1:]
				if len(f) > 0 && isHex(f[0]) {
					v = v<<4 | unhex(f[0])
					f = f[1:]
				}
				dst = append(dst, v)
			} else {
				dst = append(dst, 'x')
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// copyEscape maps a byte to the letter PostgreSQL escapes it with, or 0.
var copyEscape = [256]byte{'\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't', '\v': 'v', '\\': '\\'}

// EncodeCopyField appends v escaped for COPY text format to dst, byte for
// byte as PostgreSQL's COPY TO writes it.
func EncodeCopyField(dst, v []byte) []byte {
	start := 0
	for i := 0; i < len(v); i++ {
		if e := copyEscape[v[i]]; e != 0 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', e)
			start = i + 1
		}
	}
	return append(dst, v[start:]...)
}

// SplitCopyLine splits one COPY text row (without or with its trailing
// newline) into decoded values, nil for NULL. It allocates; the masker's hot
// path does not use it.
func SplitCopyLine(line []byte) [][]byte {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	var out [][]byte
	start := 0
	for {
		end, _ := nextField(line, start)
		f := line[start:end]
		if bytes.Equal(f, nullField) {
			out = append(out, nil)
		} else {
			out = append(out, DecodeCopyField(make([]byte, 0, len(f)), f))
		}
		if end >= len(line) {
			return out
		}
		start = end + 1
	}
}

// AppendCopyLine encodes values (nil for NULL) as one COPY text row ending in
// a newline.
func AppendCopyLine(dst []byte, vals [][]byte) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, '\t')
		}
		if v == nil {
			dst = append(dst, nullField...)
		} else {
			dst = EncodeCopyField(dst, v)
		}
	}
	return append(dst, '\n')
}
