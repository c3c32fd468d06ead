package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/pgtwin/pgtwin/twin/api"
)

// treeNode is main, a snapshot of main, or a branch.
type treeNode struct {
	label    string
	children []*treeNode
}

// printTree draws main, its snapshots, and under each snapshot the branches
// cloned from it; a branch of a branch hangs under its parent branch. A
// branch whose parent the caller cannot see (someone else's) hangs under the
// snapshot it was cloned from, or under main.
func printTree(w io.Writer, bs []api.Branch, ss []api.Snapshot) error {
	byName := make(map[string]*treeNode, len(bs))
	for i := range bs {
		b := &bs[i]
		byName[b.Name] = &treeNode{label: branchLabel(b)}
	}
	// A snapshot that only branches of branches use is a snapshot of a
	// branch, not of main: it is not drawn under main.
	ofMain := make(map[string]bool, len(ss))
	for _, s := range ss {
		ofMain[s.ID] = true
	}
	for _, b := range bs {
		if _, isBranch := byName[b.Parent]; isBranch {
			ofMain[b.Snapshot] = false
		}
	}
	for _, b := range bs {
		if _, isBranch := byName[b.Parent]; !isBranch && b.Snapshot != "" {
			if _, known := ofMain[b.Snapshot]; known {
				ofMain[b.Snapshot] = true
			}
		}
	}
	snaps := make(map[string]*treeNode)
	root := &treeNode{label: "main"}
	for _, s := range ss {
		if !ofMain[s.ID] {
			continue
		}
		n := &treeNode{label: fmt.Sprintf("%s  %s  %s", s.ID, timeText(s.CreatedAt), humanBytes(s.SizeBytes))}
		snaps[s.ID] = n
		root.children = append(root.children, n)
	}
	names := make([]string, 0, len(bs))
	for _, b := range bs {
		names = append(names, b.Name)
	}
	sort.Strings(names)
	parentOf := make(map[string]api.Branch, len(bs))
	for _, b := range bs {
		parentOf[b.Name] = b
	}
	for _, name := range names {
		b := parentOf[name]
		n := byName[name]
		switch {
		case byName[b.Parent] != nil && b.Parent != b.Name:
			byName[b.Parent].children = append(byName[b.Parent].children, n)
		case snaps[b.Snapshot] != nil:
			snaps[b.Snapshot].children = append(snaps[b.Snapshot].children, n)
		default:
			if b.Parent != "" && b.Parent != "main" {
				n.label += fmt.Sprintf("  (from %s)", b.Parent)
			}
			root.children = append(root.children, n)
		}
	}
	var sb strings.Builder
	sb.WriteString(root.label + "\n")
	drawChildren(&sb, root, "")
	_, err := io.WriteString(w, sb.String())
	return err
}

func drawChildren(sb *strings.Builder, n *treeNode, prefix string) {
	for i, c := range n.children {
		last := i == len(n.children)-1
		branch, next := "├── ", "│   "
		if last {
			branch, next = "└── ", "    "
		}
		sb.WriteString(prefix + branch + c.label + "\n")
		drawChildren(sb, c, prefix+next)
	}
}

func branchLabel(b *api.Branch) string {
	parts := []string{b.Name, stateText(b)}
	if b.Owner != "" {
		parts = append(parts, b.Owner)
	}
	if b.Port != 0 {
		parts = append(parts, fmt.Sprintf(":%d", b.Port))
	}
	if b.ExpiresAt != nil {
		parts = append(parts, "expires "+timeText(*b.ExpiresAt))
	}
	return strings.Join(parts, "  ")
}
