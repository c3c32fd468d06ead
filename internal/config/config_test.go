package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The example file documents every key; parsing it must give the defaults
// plus its sample source and columns, and validate.
func TestExampleFileParsesAndValidates(t *testing.T) {
	f, err := os.Open("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := ParseConfig(f)
	if err != nil {
		t.Fatalf("parse example: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate example: %v", err)
	}
	want := DefaultConfig()
	want.Source.URL = cfg.Source.URL
	want.Anonymize.Columns = cfg.Anonymize.Columns
	want.Sync.IncludeSchemas, want.Sync.ExcludeTables = cfg.Sync.IncludeSchemas, cfg.Sync.ExcludeTables
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("example file differs from DefaultConfig:\n got %+v\nwant %+v", cfg, want)
	}
	if len(cfg.Anonymize.Columns) != 4 || cfg.Anonymize.Columns["public.users.email"]["transform"] != "email" {
		t.Fatalf("columns = %v", cfg.Anonymize.Columns)
	}
}

// Every key of DefaultConfig appears in the example file, so none goes undocumented.
func TestExampleFileListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var walk func(prefix string, v reflect.Value)
	walk = func(section string, v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			key := f.Tag.Get("toml")
			if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == v.Type().PkgPath() && f.Type.Name() != "PortRange" {
				if !strings.Contains(text, "["+key+"]") {
					t.Errorf("section [%s] missing from config.example.toml", key)
				}
				walk(key, v.Field(i))
				continue
			}
			if !strings.Contains(text, "\n"+key+" = ") && !strings.Contains(text, "["+section+"."+key+"]") {
				t.Errorf("key %s.%s missing from config.example.toml", section, key)
			}
		}
	}
	walk("", reflect.ValueOf(DefaultConfig()))
}

func TestParseErrorsNameLineAndKey(t *testing.T) {
	cases := []struct{ in, want string }{
		{"[daemon]\nsocket = \n", "line 2"},
		{"[daemon]\nsokcet = \"/x\"\n", "unknown key daemon.sokcet"},
		{"[engine]\nport_range = \"abc\"\n", "invalid port range"},
		{"[branches]\ndefault_ttl = \"soon\"\n", "invalid duration"},
		{"[engine]\npool_image_size = \"64Q\"\n", "invalid size"},
	}
	for _, c := range cases {
		_, err := ParseConfig(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseConfig(%q) = %v, want error containing %q", c.in, err, c.want)
		}
	}
}

func TestValidateNamesFieldAndValue(t *testing.T) {
	cases := []struct {
		mut  func(*Config)
		key  string
		want string
	}{
		{func(c *Config) { c.Sync.Mode = "nightly" }, "sync.mode", `"nightly"`},
		{func(c *Config) { c.Engine.Driver = "zfs" }, "engine.driver", `"zfs"`},
		{func(c *Config) { c.Engine.PortRange = PortRange{7000, 6000} }, "engine.port_range", "7000-6000"},
		{func(c *Config) { c.Daemon.DataDir = "relative" }, "daemon.data_dir", "relative"},
		{func(c *Config) { c.Daemon.LogLevel = "loud" }, "daemon.log_level", "loud"},
		{func(c *Config) { c.Anonymize.OnUnclassifiedPII = "ignore" }, "anonymize.on_unclassified_pii", "ignore"},
		{func(c *Config) { c.Branches.Settings["port"] = "5432" }, "branches.settings.port", "managed by pgtwin"},
		{func(c *Config) {
			c.Anonymize.Columns = map[string]map[string]any{"users.email": {"transform": "email"}}
		}, "anonymize.columns", "schema.table.column"},
		{func(c *Config) { c.Snapshots.Keep = 0 }, "snapshots.keep", "at least 1"},
		{func(c *Config) { c.Snapshots.PITRWindow = -1 }, "snapshots.pitr_window", "negative"},
		{func(c *Config) { c.Sync.Slot = "Pgtwin-Dev" }, "sync.slot", "Pgtwin-Dev"},
		{func(c *Config) { c.Sync.RetainedWALWarning = -1 }, "sync.retained_wal_warning", "negative"},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.mut(&cfg)
		err := cfg.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Key != c.key || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want FieldError for %s mentioning %s", err, c.key, c.want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(p, []byte("[sync]\nparallel = 0\n"), 0o600)
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "sync.parallel") {
		t.Fatalf("Load = %v, want error naming %s and sync.parallel", err, p)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func TestUnits(t *testing.T) {
	if d, _ := ParseDuration("7d"); d != 7*24*time.Hour {
		t.Errorf("7d = %v", d)
	}
	if s, _ := ParseSize("64G"); s != 64<<30 {
		t.Errorf("64G = %d", s)
	}
	if s, _ := ParseSize("512MiB"); s != 512<<20 {
		t.Errorf("512MiB = %d", s)
	}
}
