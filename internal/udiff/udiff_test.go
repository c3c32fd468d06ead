package udiff

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// apply rebuilds b from a and the script, and checks it is a valid script.
func apply(t *testing.T, a, b []string, s []Edit) {
	t.Helper()
	var got []string
	ai, bi := 0, 0
	for _, e := range s {
		switch e.Op {
		case Equal:
			if e.A != ai || e.B != bi || a[e.A] != b[e.B] {
				t.Fatalf("bad equal %+v at %d/%d", e, ai, bi)
			}
			got = append(got, a[e.A])
			ai++
			bi++
		case Delete:
			if e.A != ai {
				t.Fatalf("bad delete %+v at %d", e, ai)
			}
			ai++
		case Insert:
			if e.B != bi {
				t.Fatalf("bad insert %+v at %d", e, bi)
			}
			got = append(got, b[e.B])
			bi++
		}
	}
	if ai != len(a) || bi != len(b) || strings.Join(got, "\n") != strings.Join(b, "\n") {
		t.Fatalf("script does not turn a into b: %v", s)
	}
}

func TestScriptRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		a := make([]string, rng.IntN(30))
		for i := range a {
			a[i] = string(rune('a' + rng.IntN(5)))
		}
		b := make([]string, rng.IntN(30))
		for i := range b {
			b[i] = string(rune('a' + rng.IntN(5)))
		}
		s := Script(a, b)
		apply(t, a, b, s)
		// Minimal: no longer than the LCS says.
		changes := 0
		for _, e := range s {
			if e.Op != Equal {
				changes++
			}
		}
		if want := len(a) + len(b) - 2*lcs(a, b); changes != want {
			t.Fatalf("trial %d: %d changes, the minimum is %d", trial, changes, want)
		}
	}
}

func lcs(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

// TestHunksAsDiffU: the hunks are those GNU diff -u writes for the same
// texts (diffutils is part of every Debian install).
func TestHunksAsDiffU(t *testing.T) {
	diff, err := exec.LookPath("diff")
	if err != nil {
		t.Fatalf("diff (diffutils) is needed to compare hunks: %v", err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	for trial := range 100 {
		a := make([]string, 5+rng.IntN(40))
		for i := range a {
			a[i] = fmt.Sprintf("line %d", i) // unique: one minimal diff
		}
		b := append([]string(nil), a...)
		for range 1 + rng.IntN(4) {
			switch p := rng.IntN(len(b) + 1); rng.IntN(3) {
			case 0:
				b = append(b[:p], append([]string{fmt.Sprintf("new %d", rng.Int())}, b[p:]...)...)
			case 1:
				if p < len(b) {
					b = append(b[:p], b[p+1:]...)
				}
			default:
				if p < len(b) {
					b[p] = fmt.Sprintf("changed %d", rng.Int())
				}
			}
		}
		var lines []Line
		for _, e := range Script(a, b) {
			switch e.Op {
			case Delete:
				lines = append(lines, Line{Op: Delete, Text: a[e.A]})
			default:
				lines = append(lines, Line{Op: e.Op, Text: b[e.B]})
			}
		}
		Number(lines)
		got := Hunks(lines, 3)
		pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(pa, []byte(strings.Join(a, "\n")+"\n"), 0o644)
		os.WriteFile(pb, []byte(strings.Join(b, "\n")+"\n"), 0o644)
		out, _ := exec.Command(diff, "-u", pa, pb).Output()
		var want strings.Builder
		for _, l := range strings.SplitAfter(string(out), "\n") {
			if !strings.HasPrefix(l, "--- ") && !strings.HasPrefix(l, "+++ ") {
				want.WriteString(l)
			}
		}
		if hunkHeaders(got) != hunkHeaders(want.String()) {
			t.Fatalf("trial %d:\ngot\n%s\ndiff -u\n%s", trial, got, want.String())
		}
	}
}

// hunkHeaders are the @@ lines and the count of changed lines.
func hunkHeaders(d string) string {
	var sb strings.Builder
	n := 0
	for _, l := range strings.Split(d, "\n") {
		if strings.HasPrefix(l, "@@") {
			sb.WriteString(l + "\n")
		} else if strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-") {
			n++
		}
	}
	return sb.String() + strings.Repeat("x", n)
}
