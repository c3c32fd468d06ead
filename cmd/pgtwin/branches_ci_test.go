package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestCIVerbsUsage(t *testing.T) {
	t.Setenv(socketEnv, filepath.Join(t.TempDir(), "none.sock"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"branches", "set-ttl", "x"}, "branches set-ttl needs DURATION"},
		{[]string{"branches", "set-ttl"}, "needs NAME and DURATION"},
		{[]string{"branches", "rename", "x"}, "branches rename needs NEW"},
		{[]string{"branches", "rename", "a", "b", "c"}, "takes 2 argument(s)"},
		{[]string{"branches", "diff"}, "needs NAME and optionally OTHER"},
		{[]string{"branches", "diff", "a", "b", "c"}, "needs NAME and optionally OTHER"},
		{[]string{"branches", "diff", "a", "--color", "pink"}, "--color must be auto, always or never"},
		{[]string{"branches", "diff", "a", "-o", "env"}, "--output env"},
		{[]string{"branches", "create", "x", "--if-not-exists=perhaps"}, "invalid argument"},
		{[]string{"branches", "restore", "x"}, "branches restore needs --at TIME"},
		{[]string{"branches", "restore"}, "branches restore needs NAME"},
	} {
		stdout, stderr, code := run(t, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2 and %q", c.args, code, stderr, stdout, c.want)
		}
	}
	// A daemon that is not there is a failure (1), not a usage error.
	for _, args := range [][]string{{"branches", "set-ttl", "x", "1h"}, {"branches", "rename", "x", "y"}, {"branches", "diff", "x"}, {"branches", "create", "x", "--if-not-exists"}, {"branches", "restore", "x", "--at", "1h"}} {
		if _, stderr, code := run(t, args...); code != exitFailure || !strings.Contains(stderr, "cannot reach the daemon") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestPrintDiffColour(t *testing.T) {
	diff := "diff --git a/main b/x\n--- a/main\n+++ b/x\n@@ -1,2 +1,2 @@ TABLE public.t\n CREATE TABLE public.t (\n-    a integer\n+    b integer\n"
	var plain, col bytes.Buffer
	if err := printDiff(&plain, diff, false); err != nil || plain.String() != diff {
		t.Fatalf("plain: %q %v", plain.String(), err)
	}
	if err := printDiff(&col, diff, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\x1b[32m+    b integer\x1b[m\n", "\x1b[31m-    a integer\x1b[m\n", "\x1b[36m@@ -1,2 +1,2 @@ TABLE public.t\x1b[m\n", "\x1b[1m--- a/main\x1b[m\n", "\n CREATE TABLE public.t (\n"} {
		if !strings.Contains(col.String(), want) {
			t.Errorf("coloured diff lacks %q:\n%q", want, col.String())
		}
	}
	if isTerminal(&col) {
		t.Error("a buffer is not a terminal")
	}
}
