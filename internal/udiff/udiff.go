// Package udiff computes line edit scripts (Myers' O(ND) algorithm) and
// writes them as unified-diff hunks, as git diff does.
package udiff

import (
	"fmt"
	"strings"
)

// Op is what an edit does to one line.
type Op byte

const (
	Equal  Op = ' '
	Delete Op = '-'
	Insert Op = '+'
)

// Line is one line of an edit script. A and B count the old and new text's
// lines up to and including this one (a line not on a side counts only
// those before it); Label is the hunk header's context (git's function
// name). Number fills A and B.
type Line struct {
	Op    Op
	Text  string
	A, B  int
	Label string
}

// maxD bounds the search: past it the texts are so different that "all
// of a deleted, all of b inserted" is as readable, and memory stays small.
const maxD = 2000

// Script is an edit script turning a into b: Equal lines carry the index
// into a and b, Delete into a, Insert into b.
func Script(a, b []string) []Edit {
	// Common prefix and suffix cost nothing.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []Edit
	for i := 0; i < pre; i++ {
		out = append(out, Edit{Equal, i, i})
	}
	out = append(out, myers(a[pre:len(a)-suf], b[pre:len(b)-suf], pre, pre)...)
	for i := 0; i < suf; i++ {
		out = append(out, Edit{Equal, len(a) - suf + i, len(b) - suf + i})
	}
	return out
}

// Edit is one step of Script.
type Edit struct {
	Op   Op
	A, B int
}

func myers(a, b []string, offA, offB int) []Edit {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return bulk(n, m, offA, offB)
	}
	max := n + m
	if max > maxD {
		max = maxD
	}
	v := make([]int, 2*max+2)
	var trace [][]int
	for d := 0; d <= max; d++ {
		snap := make([]int, 2*d+1)
		for k := -d; k <= d; k++ {
			snap[k+d] = v[k+max]
		}
		trace = append(trace, snap)
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[k-1+max] < v[k+1+max]) {
				x = v[k+1+max]
			} else {
				x = v[k-1+max] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[k+max] = x
			if x >= n && y >= m {
				return backtrack(trace, a, b, d, offA, offB)
			}
		}
	}
	return bulk(n, m, offA, offB)
}

// backtrack walks the saved frontiers from the end back to the start.
func backtrack(trace [][]int, a, b []string, d, offA, offB int) []Edit {
	x, y := len(a), len(b)
	var rev []Edit
	for ; d > 0; d-- {
		snap := trace[d]
		at := func(k int) int { return snap[k+d] }
		k := x - y
		var pk int
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := at(pk)
		py := px - pk
		for x > px && y > py {
			x--
			y--
			rev = append(rev, Edit{Equal, x + offA, y + offB})
		}
		if x == px {
			y--
			rev = append(rev, Edit{Insert, -1, y + offB})
		} else {
			x--
			rev = append(rev, Edit{Delete, x + offA, -1})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, Edit{Equal, x + offA, y + offB})
	}
	out := make([]Edit, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out
}

func bulk(n, m, offA, offB int) []Edit {
	out := make([]Edit, 0, n+m)
	for i := 0; i < n; i++ {
		out = append(out, Edit{Delete, offA + i, -1})
	}
	for j := 0; j < m; j++ {
		out = append(out, Edit{Insert, -1, offB + j})
	}
	return out
}

// Hunks writes the changed lines of lines as unified-diff hunks with ctx
// lines of context around each change; "" when nothing changed.
func Hunks(lines []Line, ctx int) string {
	var sb strings.Builder
	n := len(lines)
	for i := 0; i < n; {
		for i < n && lines[i].Op == Equal {
			i++
		}
		if i == n {
			break
		}
		start := max(0, i-ctx)
		end := i // one past the last change of this hunk
		for j := i; j < n; j++ {
			if lines[j].Op != Equal {
				end = j + 1
				continue
			}
			if j-end >= 2*ctx {
				break
			}
		}
		stop := min(n, end+ctx)
		writeHunk(&sb, lines[start:stop], lines[i].Label)
		i = stop
	}
	return sb.String()
}

func writeHunk(sb *strings.Builder, h []Line, label string) {
	aN, bN := 0, 0
	for _, l := range h {
		if l.Op != Insert {
			aN++
		}
		if l.Op != Delete {
			bN++
		}
	}
	aBefore, bBefore := h[0].A, h[0].B
	if h[0].Op != Insert {
		aBefore--
	}
	if h[0].Op != Delete {
		bBefore--
	}
	// An empty side is written as the line before it, as diff -u does.
	aStart, bStart := aBefore, bBefore
	if aN > 0 {
		aStart++
	}
	if bN > 0 {
		bStart++
	}
	fmt.Fprintf(sb, "@@ -%s +%s @@", rng(aStart, aN), rng(bStart, bN))
	if label != "" {
		sb.WriteString(" " + label)
	}
	sb.WriteByte('\n')
	for _, l := range h {
		sb.WriteByte(byte(l.Op))
		sb.WriteString(l.Text)
		sb.WriteByte('\n')
	}
}

func rng(start, n int) string {
	if n == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}

// Number sets A and B of lines, counting from the start of the text.
func Number(lines []Line) {
	a, b := 0, 0
	for i := range lines {
		if lines[i].Op != Insert {
			a++
		}
		if lines[i].Op != Delete {
			b++
		}
		lines[i].A, lines[i].B = a, b
	}
}
