package twinsync

import (
	"context"
	"strings"
	"testing"

	"github.com/pgtwin/pgtwin/anonymize"
	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// Detection on a real catalog: ReadCatalog samples the head of bytea values
// (hex, whatever bytea_output says), so a staff photo is found by its magic
// bytes and its suggested rule is null; a product image is not a person's.
func TestReadCatalogDetectsPhotos(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t, pgtest.Options{Databases: []string{"src"}})
	pg.Exec(t, "src", `
CREATE TABLE staff (staff_id int PRIMARY KEY, first_name text, picture bytea, api_key uuid);
INSERT INTO staff SELECT i, 'Mike', '\x89504e470d0a1a0a0000000d49484452'::bytea || decode(repeat('ab', 5000), 'hex'), gen_random_uuid() FROM generate_series(1, 30) i;
CREATE TABLE products (id int PRIMARY KEY, name text, image bytea);
INSERT INTO products SELECT i, 'Lamp ' || i, '\xffd8ffe000104a464946'::bytea || decode(repeat('cd', 5000), 'hex') FROM generate_series(1, 30) i;
ALTER DATABASE src SET bytea_output = 'escape';
`)
	cat, err := ReadCatalog(ctx, pg.Connect(t, "src"), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range cat.Tables {
		for _, c := range tb.Columns {
			if c.Base != "bytea" {
				continue
			}
			if len(c.Samples) != CatalogSampleRows || len(c.Samples[0]) != 2+2*byteaSampleBytes || !strings.HasPrefix(string(c.Samples[0]), `\x`) {
				t.Fatalf("%s.%s: %d samples, first %d bytes: want %d hex samples of the first %d bytes", tb.Name, c.Name, len(c.Samples), len(c.Samples[0]), CatalogSampleRows, byteaSampleBytes)
			}
		}
	}
	plan, err := anonymize.BuildPlan(cat, nil, anonymize.PolicyFail)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range plan.Unclassified() {
		got[c.Column] = c.Suggest
	}
	for col, rule := range map[string]string{"public.staff.picture": `{ transform = "null" }`, "public.staff.api_key": `{ transform = "uuid" }`,
		"public.staff.first_name": `{ transform = "name", part = "first" }`} {
		if !strings.HasSuffix(got[col], rule) {
			t.Errorf("%s: suggested %q, want %s\n%s", col, got[col], rule, plan)
		}
	}
	if _, ok := got["public.products.image"]; ok || len(got) != 3 {
		t.Errorf("unclassified: %v\n%s", got, plan)
	}
}
