package config

import (
	"errors"
	"strings"
	"testing"
)

// The quoted key form SPEC.md shows, as a user writes it in TOML, passes
// Validate; the unquoted dotted form fails naming the key and the fix.
func TestValidateQuotedColumnKeys(t *testing.T) {
	in := `[anonymize.columns]
'app."order"."user.name"' = { transform = "name" }
'public.Users."E""mail"' = { transform = "email" }
"public.users.email" = { transform = "email" }
`
	cfg, err := ParseConfig(strings.NewReader(in))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if _, ok := cfg.Anonymize.Columns[`app."order"."user.name"`]; !ok {
		t.Fatalf("columns: %v", cfg.Anonymize.Columns)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	cfg.Anonymize.Columns = map[string]map[string]any{"app.order.user.name": {"transform": "name"}}
	err = cfg.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "anonymize.columns" || !strings.Contains(err.Error(), "app.order.user.name") ||
		!strings.Contains(err.Error(), `app."order"."user.name"`) {
		t.Errorf("Validate of a dotted unquoted key = %v, want a FieldError naming the key and the quoted form", err)
	}
}
