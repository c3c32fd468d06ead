package sample

import (
	"testing"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

func TestFeatureSchemaBuilds(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{Databases: []string{"feature"}})
	c.Exec(t, "postgres", FeatureRoles)
	c.Exec(t, "feature", FeatureSchema)
	for q, want := range map[string]string{
		"SELECT count(*) FROM app.events":                                            "302",
		"SELECT count(*) FROM app.events_other WHERE isfinite(at) = false":           "2",
		"SELECT count(*) FROM app.vehicles":                                          "20",
		"SELECT length(big_text) > 1 << 20 FROM app.blobs WHERE id = 1":              "t",
		"SELECT length(big_bytes) > 1 << 20 FROM app.blobs WHERE id = 2":             "t",
		"SELECT count(*) FROM pg_largeobject_metadata":                               "2",
		"SELECT relforcerowsecurity FROM pg_class WHERE oid = 'app.notes'::regclass": "t",
		"SELECT count(*) FROM app.account_stats":                                     "3",
		"SELECT reading::text FROM app.measurements WHERE id = 1":                    "NaN",
	} {
		if got := c.Psql(t, "feature", q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
	// Same data on every run (uuids, digests and all).
	c.Exec(t, "postgres", "CREATE DATABASE feature2")
	c.Exec(t, "feature2", FeatureSchema)
	q := "SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM app.accounts a"
	if a, b := c.Psql(t, "feature", q), c.Psql(t, "feature2", q); a != b {
		t.Fatalf("data differs between runs: %s vs %s", a, b)
	}
}
