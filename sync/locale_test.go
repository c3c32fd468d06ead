package twinsync

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	copydrv "github.com/pgtwin/pgtwin/engine/copy"
	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/internal/pgtest"
	"github.com/pgtwin/pgtwin/twin"
	"github.com/pgtwin/pgtwin/twin/api"
)

// hostlessLocale is a glibc locale only the source has: compiled into a
// directory that the source's postmaster finds through LOCPATH, while the
// twin's (whose environment the engine builds from nothing) cannot.
const hostlessLocale = "xx_PGTWIN.UTF-8"

// The twin's database gets the source database's locale, through the
// daemon's path (Syncer, Main, twin.ReplaceMain), in dump and logical mode:
// libc C where the twin's default is C.UTF-8, ICU en-US (which sorts
// differently from C), and a locale the twin's host lacks (the default, a
// warning, and the sync still succeeds).
func TestSyncKeepsSourceLocale(t *testing.T) {
	ctx := context.Background()
	locDir, err := os.MkdirTemp("", "pgtwin-locale-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(locDir) })
	os.Chmod(locDir, 0o755)
	if out, err := exec.Command("localedef", "-i", "C", "-f", "UTF-8", filepath.Join(locDir, hostlessLocale)).CombinedOutput(); err != nil {
		t.Fatalf("localedef (apt-get install locales): %v\n%s", err, out)
	}
	t.Setenv("LOCPATH", locDir) // the source's postmaster inherits it
	src := pgtest.Start(t, pgtest.Options{Logical: true})
	for db, opts := range map[string]string{
		"c":       "LC_COLLATE 'C' LC_CTYPE 'C'",
		"icu":     "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
		"missing": "LC_COLLATE '" + hostlessLocale + "' LC_CTYPE '" + hostlessLocale + "'",
	} {
		src.Exec(t, "postgres", "CREATE DATABASE "+db+" TEMPLATE template0 "+opts)
		src.Exec(t, db, "CREATE TABLE words (id int PRIMARY KEY, w text); INSERT INTO words VALUES (1, 'a'), (2, 'B'), (3, 'b'), (4, 'A')")
	}
	log, logs := testLogger(t)
	tw := newLocaleTwin(t, log)

	// want is the source's locale and order of words, as the main must have them.
	check := func(what, db string, want string) {
		t.Helper()
		q := `SELECT datlocprovider::text || ' ' || datcollate || ' ' || datctype || ' ' || coalesce(daticulocale, '-') || ': ' ||
			(SELECT string_agg(w, ',' ORDER BY w) FROM public.words) FROM pg_database WHERE datname = current_database()`
		conn, err := tw.MainConn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var got string
		if err := conn.QueryRow(ctx, q).Scan(&got); err != nil {
			t.Fatalf("%s: main: %v", what, err)
		}
		if want == "" {
			if err := src.Connect(t, db).QueryRow(ctx, q).Scan(&want); err != nil {
				t.Fatalf("%s: source: %v", what, err)
			}
		}
		if got != want {
			t.Errorf("%s: main has %q, want %q\nlog:\n%s", what, got, want, logs)
		}
	}
	sync := func(db, mode string) {
		t.Helper()
		s := newLocaleSyncer(t, tw, src, db, mode, log)
		if err := s.Start(ctx); err != nil {
			t.Fatalf("start %s sync of %s: %v", mode, db, err)
		}
		defer s.Stop()
		if mode == api.SyncModeDump {
			if err := s.dump.Trigger().Wait(ctx); err != nil {
				t.Fatalf("dump sync of %s: %v\nlog:\n%s", db, err, logs)
			}
			return
		}
		for deadline := time.Now().Add(time.Minute); s.Status().State != api.SyncStreaming; time.Sleep(100 * time.Millisecond) {
			if st := s.Status(); st.State == api.SyncFailed || time.Now().After(deadline) {
				t.Fatalf("logical sync of %s: %s %s\nlog:\n%s", db, st.State, st.LastError, logs)
			}
		}
	}
	sync("c", api.SyncModeDump)
	check("dump of a C database", "c", "")
	sync("icu", api.SyncModeDump)
	check("dump of an ICU database", "icu", "i C C en-US: a,A,b,B")

	sync("missing", api.SyncModeDump)
	check("dump of a database in a locale the host lacks", "missing", "c C.UTF-8 C.UTF-8 -: A,B,a,b")
	if !strings.Contains(logs.String(), "locale is not available on this host") || !strings.Contains(logs.String(), hostlessLocale) {
		t.Errorf("no warning naming %s in the log:\n%s", hostlessLocale, logs)
	}

	sync("icu", api.SyncModeLogical)
	check("logical initial copy of an ICU database", "icu", "i C C en-US: a,A,b,B")
}

// localeMain is the daemon's adapter (cmd/pgtwin mainTwin) over a twin.
type localeMain struct{ tw *twin.Twin }

var _ Main = localeMain{}

func (m localeMain) Replace(ctx context.Context, loc engine.DatabaseLocale, fill func(context.Context, string) error) (string, error) {
	snap, err := m.tw.ReplaceMain(ctx, loc, func(ctx context.Context, inst *engine.Instance) error {
		return fill(ctx, inst.ConnString(inst.Superuser, m.tw.MainDatabase()))
	})
	return snap.ID, err
}

func (m localeMain) ConnString(ctx context.Context) (string, error) {
	inst, err := m.tw.MainInstance(ctx)
	if err != nil {
		return "", err
	}
	return inst.ConnString(inst.Superuser, m.tw.MainDatabase()), nil
}

func (m localeMain) Snapshot(ctx context.Context, lsn string) (string, error) {
	snap, err := m.tw.TakeSnapshot(ctx, twin.SnapshotOptions{SourceLSN: lsn})
	return snap.ID, err
}

// newLocaleTwin is a started twin on the copy driver, its database "app".
func newLocaleTwin(t *testing.T, log zerolog.Logger) *twin.Twin {
	t.Helper()
	ctx := context.Background()
	base, err := os.MkdirTemp("", "pgtwin-loctwin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755) // the postgres user walks down to its volumes
	cfg := config.DefaultConfig()
	cfg.Daemon.DataDir = filepath.Join(base, "d")
	cfg.Daemon.Socket = filepath.Join(base, "pgtwin.sock")
	cfg.Daemon.AdminGroup = "pgtwin-test-nonexistent"
	cfg.Source.URL = "postgres://x@127.0.0.1/app"
	cfg.Engine.PortRange = config.PortRange{Low: 18960, High: 18979}
	drv, err := copydrv.Open(ctx, filepath.Join(base, "volumes"), log)
	if err != nil {
		t.Fatalf("copy driver: %v", err)
	}
	eng, err := engine.New(ctx, engine.Options{Config: cfg.Engine, DataDir: cfg.Daemon.DataDir, Driver: drv, Logger: log})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	tw, err := twin.New(ctx, twin.Options{Config: cfg, Engine: eng, Logger: log})
	if err != nil {
		t.Fatalf("twin: %v", err)
	}
	if err := tw.Start(ctx); err != nil {
		t.Fatalf("start twin: %v", err)
	}
	t.Cleanup(func() {
		tw.Stop()
		ids, _ := eng.Volumes(context.Background())
		for _, id := range ids {
			if _, ok := eng.Instance(id); ok {
				eng.Stop(context.Background(), id)
			}
		}
	})
	return tw
}

// newLocaleSyncer is the daemon's Syncer for database db of src in mode.
func newLocaleSyncer(t *testing.T, tw *twin.Twin, src *pgtest.Cluster, db, mode string, log zerolog.Logger) *Syncer {
	t.Helper()
	dir := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.Source.URL = src.ConnString(db)
	cfg.Daemon.DataDir = dir
	cfg.Anonymize.KeyFile = filepath.Join(dir, "mask.key")
	cfg.Anonymize.OnUnclassifiedPII = "mask"
	cfg.Sync.Mode = mode
	cfg.Sync.Slot = "pgtwin_" + db
	s, err := New(cfg, localeMain{tw}, Options{BinDir: src.Bin, Log: log})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return s
}
