package anonymize

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

func init() {
	register("date", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		t := &dateT{days: p.integer("range_days", 365, 1, 36500), keepYear: p.boolean("keep_year", false)}
		t.p = newPRF(key, id)
		return t, nil
	})
	register("number", func(p *params, key []byte, ct ColumnType, id string) (Transformer, error) {
		t := &numberT{rel: p.num("relative", 0), abs: p.num("absolute", 0), ct: ct}
		if t.rel < 0 || t.abs < 0 {
			return nil, fmt.Errorf("parameters \"relative\" and \"absolute\" must not be negative")
		}
		if t.rel == 0 && t.abs == 0 {
			t.rel = 0.1
		}
		t.p = newPRF(key, id)
		return t, nil
	})
}

// dateT shifts a date (or the date part of a timestamp) by a keyed number of
// days in [-range, +range], never 0. With keep_year the day is instead a
// keyed day of the same year. The time of day and zone are kept as they were.
type dateT struct {
	p        *prf
	days     int
	keepYear bool
}

func (t *dateT) Unique() bool { return false }

// Append: shifting by 1..range days never gives the same day; keep_year
// draws a day of the year and draws again when it is the same day.
func (t *dateT) Append(dst, v []byte) ([]byte, bool, error) { return redraw(t, dst, v) }

func (t *dateT) appendAttempt(dst, v []byte, attempt int) ([]byte, bool, error) {
	s := string(v)
	if s == "infinity" || s == "-infinity" || strings.HasSuffix(s, " BC") {
		// Nothing to hide in infinity; BC dates are kept (documented).
		return append(dst, v...), false, nil
	}
	y, m, d, rest, ok := parseISODate(s)
	if !ok {
		return dst, false, fmt.Errorf("date: %w (expected ISO DateStyle)", errValue)
	}
	b := t.p.streamAttempt(v[:len(v)-len(rest)], attempt)
	var nt time.Time
	if t.keepYear {
		first := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		n := first.AddDate(1, 0, 0).Sub(first).Hours() / 24
		nt = first.AddDate(0, 0, b.take(int(n)))
	} else {
		off := 1 + b.take(t.days)
		if b.u(1) == 1 {
			off = -off
		}
		nt = time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, off)
		if nt.Year() < 1 {
			nt = nt.AddDate(0, 0, 2*t.days+2)
		}
	}
	dst = appendISODate(dst, nt)
	return append(dst, rest...), false, nil
}

func parseISODate(s string) (y, m, d int, rest string, ok bool) {
	i := strings.IndexByte(s, '-')
	if i < 4 {
		return 0, 0, 0, "", false
	}
	y, err := strconv.Atoi(s[:i])
	if err != nil || len(s) < i+6 || s[i+3] != '-' {
		return 0, 0, 0, "", false
	}
	m, err1 := strconv.Atoi(s[i+1 : i+3])
	d, err2 := strconv.Atoi(s[i+4 : i+6])
	if err1 != nil || err2 != nil || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, 0, 0, "", false
	}
	return y, m, d, s[i+6:], true
}

func appendISODate(dst []byte, t time.Time) []byte {
	y := t.Year()
	if y < 1000 {
		dst = append(dst, "000"[:4-len(strconv.Itoa(y))]...)
	}
	dst = strconv.AppendInt(dst, int64(y), 10)
	dst = append(dst, '-', byte('0'+int(t.Month())/10), byte('0'+int(t.Month())%10), '-')
	return append(dst, byte('0'+t.Day()/10), byte('0'+t.Day()%10))
}

// numberT adds keyed noise, relative (x * (1 ± r)) or absolute (x ± a), keeps
// the sign and the value's scale, and clamps to what the column's type
// holds (numeric(p,s) digits, integer ranges).
type numberT struct {
	p        *prf
	rel, abs float64
	ct       ColumnType
}

func (t *numberT) Unique() bool { return false }

func (t *numberT) Append(dst, v []byte) ([]byte, bool, error) {
	s := string(v)
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return append(dst, v...), false, nil
	}
	// PostgreSQL never writes exponents beyond float8's; a huge one would
	// make big.Rat compute 10^n.
	if e := strings.IndexAny(s, "eE"); e >= 0 {
		if n, err := strconv.Atoi(strings.TrimPrefix(s[e+1:], "+")); err != nil || n > 400 || n < -400 {
			return dst, false, fmt.Errorf("number: %w", errValue)
		}
	}
	x, ok := new(big.Rat).SetString(s)
	if !ok {
		return dst, false, fmt.Errorf("number: %w", errValue)
	}
	b := t.p.stream(v)
	f := (float64(b.u(53))/float64(uint64(1)<<53))*2 - 1 // [-1, 1)
	noisy := new(big.Rat)
	if t.rel > 0 {
		noisy.Mul(x, new(big.Rat).SetFloat64(1+t.rel*f))
	} else {
		noisy.Add(x, new(big.Rat).SetFloat64(t.abs*f))
	}
	if x.Sign() >= 0 && noisy.Sign() < 0 || x.Sign() < 0 && noisy.Sign() > 0 {
		noisy.Neg(noisy)
	}
	start := len(dst)
	dst = t.format(dst, s, noisy)
	if out, ok := new(big.Rat).SetString(string(dst[start:])); !ok || out.Cmp(x) != 0 {
		return dst, false, nil
	}
	// Rounded back to the value itself (0 under relative noise, small
	// integers, 1.5 ± 0.1 at one decimal): step one unit of the last kept
	// place instead, in a keyed direction, the other way when clamping
	// would undo the step. A keyed number never masks to itself.
	up := b.u(1) == 1
	if x.Sign() < 0 {
		up = false
	} else if x.Sign() == 0 {
		up = true
	}
	for _, dir := range []bool{up, !up} {
		step := t.unit(s)
		if !dir {
			step.Neg(step)
		}
		dst = t.format(dst[:start], s, new(big.Rat).Add(x, step))
		if out, ok := new(big.Rat).SetString(string(dst[start:])); !ok || out.Cmp(x) != 0 {
			break
		}
	}
	return dst, false, nil
}

// unit is one unit of the last place the output keeps: 1 for integers,
// 10^-scale for numeric, a relative step for floats.
func (t *numberT) unit(s string) *big.Rat {
	switch t.ct.Base {
	case "int2", "int4", "int8":
		return big.NewRat(1, 1)
	case "float4", "float8":
		x, _ := new(big.Rat).SetString(s)
		fx, _ := x.Float64()
		u := math.Abs(fx) * 1e-3
		if u == 0 || math.IsInf(u, 0) {
			u = 1
		}
		return new(big.Rat).SetFloat64(u)
	}
	scale := t.scale(s)
	return new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
}

func (t *numberT) scale(s string) int {
	scale := t.ct.Scale
	if t.ct.Precision == 0 || scale < 0 {
		scale = 0
		if i := strings.IndexByte(s, '.'); i >= 0 {
			scale = len(s) - i - 1
			if e := strings.IndexAny(s, "eE"); e > i {
				scale = e - i - 1
			}
		}
	}
	return scale
}

// format writes noisy as the column's type holds it.
func (t *numberT) format(dst []byte, s string, noisy *big.Rat) []byte {
	switch t.ct.Base {
	case "float4", "float8":
		fv, _ := noisy.Float64()
		bitSize := 64
		if t.ct.Base == "float4" {
			bitSize = 32
		}
		return strconv.AppendFloat(dst, fv, 'g', -1, bitSize)
	case "int2", "int4", "int8":
		return append(dst, clampInt(noisy, t.ct.Base)...)
	}
	scale := t.scale(s)
	if t.ct.Precision > 0 {
		// numeric(p,s) holds |x| < 10^(p-s).
		limit := new(big.Rat).SetFrac(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(t.ct.Precision)), nil),
			new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
		limit.Sub(limit, new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
		if noisy.Cmp(limit) > 0 {
			noisy.Set(limit)
		} else if new(big.Rat).Neg(noisy).Cmp(limit) > 0 {
			noisy.Neg(limit)
		}
	}
	return append(dst, noisy.FloatString(scale)...)
}

func clampInt(r *big.Rat, base string) string {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	switch base {
	case "int2":
		lo, hi = math.MinInt16, math.MaxInt16
	case "int4":
		lo, hi = math.MinInt32, math.MaxInt32
	}
	s := r.FloatString(0)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if strings.HasPrefix(s, "-") {
			n = lo
		} else {
			n = hi
		}
	}
	n = max(lo, min(hi, n))
	return strconv.FormatInt(n, 10)
}
