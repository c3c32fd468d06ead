package twinsync

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// sourceNotes are the sentences `mask plan` adds for what a sync would not
// restore as the source has it, or would refuse: extensions this host
// lacks, large objects, default privileges, and the roles grants name.
func sourceNotes(ctx context.Context, src *pgx.Conn, binDir, loMode string) ([]string, error) {
	missing, err := extensionWarnings(ctx, src, binDir)
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, m := range missing {
		notes = append(notes, refusalPrefix+m)
	}
	var los int64
	if err := src.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata").Scan(&los); err != nil {
		return nil, fmt.Errorf("source large objects: %w", err)
	}
	if los > 0 {
		notes = append(notes, largeObjectNote(los, loMode))
	}
	acls, err := sourceDefaultACLs(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("source default privileges: %w", err)
	}
	if acls > 0 {
		notes = append(notes, fmt.Sprintf("%d ALTER DEFAULT PRIVILEGES %s not restored: in the twin, objects are created by branch roles, which they do not name",
			acls, plural(int64(acls), "entry is", "entries are")))
	}
	rows, err := src.Query(ctx, sourceGrantRoles)
	if err != nil {
		return nil, fmt.Errorf("source roles: %w", err)
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("source roles: %w", err)
	}
	if len(roles) > 0 {
		for i, r := range roles {
			if !plainIdent.MatchString(r) {
				roles[i] = pgx.Identifier{r}.Sanitize()
			}
		}
		notes = append(notes, "grants and policies name the roles "+strings.Join(roles, ", ")+
			": the twin creates each it lacks as a NOLOGIN role that branch roles may SET ROLE to")
	}
	return notes, nil
}

// refusalPrefix starts the notes for what stops a sync.
const refusalPrefix = "the sync will stop: "

// planRefusal is the sentence a sync would stop with for what this host
// lacks, from the plan's notes; "" when nothing stops it.
func planRefusal(notes []string) string {
	var out []string
	for _, n := range notes {
		if m, ok := strings.CutPrefix(n, refusalPrefix); ok {
			out = append(out, m)
		}
	}
	return strings.Join(out, "; ")
}

// largeObjectNote says what sync.large_objects = mode does with n large
// objects.
func largeObjectNote(n int64, mode string) string {
	what := plural(n, "large object", "large objects")
	switch mode {
	case "empty":
		return fmt.Sprintf(`%d %s: created empty with their OIDs, no content copied (sync.large_objects = "empty")`, n, what)
	case "copy":
		return fmt.Sprintf(`%d %s: copied UNMASKED, as sync.large_objects = "copy" asks`, n, what)
	}
	return fmt.Sprintf(`%d %s not copied: they can hold PII and no rule masks them, so oid columns naming them point nowhere in the twin (sync.large_objects = "skip"; "empty" keeps their OIDs valid)`, n, what)
}

// plainIdent is a name SQL needs no quotes for (reserved words aside).
var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
