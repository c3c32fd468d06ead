package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// TestMaskPlanDottedKeySyncs: a column whose name holds a dot, in a table
// whose name is a reserved word. `mask plan` suggests its key in the quoted
// form SPEC.md defines; that line, pasted under [anonymize.columns] as
// printed, lets a sync with on_unclassified_pii = "fail" run, and the
// column comes out masked.
func TestMaskPlanDottedKeySyncs(t *testing.T) {
	src := pgtest.Start(t, pgtest.Options{Databases: []string{"crm"}})
	src.Exec(t, "crm", `CREATE SCHEMA app;
CREATE TABLE app."order" (id int PRIMARY KEY, "user.name" text, total numeric);
INSERT INTO app."order" SELECT i, (ARRAY['Alice','Bob','Carol','Dmitri','Eve','Fatima','Gustav','Hiro'])[1 + i % 8] || ' ' ||
	(ARRAY['Johnson','Smith','Okafor','Nguyen','Kowalski','García','Andersson','Tanaka'])[1 + (i / 8) % 8], i * 1.5
	FROM generate_series(1, 200) i;`)
	key := filepath.Join(t.TempDir(), "mask.key")
	d := startDaemon(t, daemonOpts{Driver: "copy", Extra: fmt.Sprintf(`
[source]
url = %q

[sync]
mode = "dump"
schedule = "0 2 * * *"

[anonymize]
key_file = %q
on_unclassified_pii = "fail"

[anonymize.columns]
`, src.ConnString("crm"), key)})

	r := d.cli(root, "mask", "plan")
	const want = `'app.order."user.name"' = {`
	var line string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), want) {
			line = strings.TrimSpace(l)
		}
	}
	if r.code != 1 || line == "" {
		t.Fatalf("mask plan: want exit 1 and a suggestion starting %s:\n%s", want, r)
	}
	if r := d.cli(root, "sync", "now", "--wait"); r.code != 1 {
		t.Fatalf("sync with the dotted column unclassified: want exit 1:\n%s", r)
	}
	if st := d.syncStatus(t); st.Step != "plan" || !strings.Contains(st.LastError, line) {
		t.Fatalf("sync stopped by the plan should quote the suggestion %s: %+v", line, st)
	}

	cfg, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Config, append(cfg, []byte(line+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	d.stop()
	d.start()
	if r := d.cli(root, "mask", "plan"); r.code != 0 || !strings.Contains(r.stdout, "user.name") {
		t.Fatalf("mask plan with the suggested rule pasted in:\n%s", r)
	}
	d.syncOK(t)

	source := strs(t, connectT(t, src.ConnString("crm")), `SELECT "user.name" FROM app."order" ORDER BY id`)
	twin := strs(t, connectT(t, d.mainConnString(t)), `SELECT coalesce("user.name", '<null>') FROM app."order" ORDER BY id`)
	if len(twin) != len(source) {
		t.Fatalf("twin has %d rows of app.\"order\", source %d", len(twin), len(source))
	}
	raw := map[string]bool{}
	for _, v := range source {
		raw[v] = true
	}
	for i, v := range twin {
		if raw[v] {
			t.Fatalf("row %d of app.\"order\".\"user.name\" holds a source value unmasked", i+1)
		}
	}
}
