package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/internal/logkey"
)

// Options configure an Engine.
type Options struct {
	Config config.Engine
	// DataDir is daemon.data_dir. The engine keeps DataDir/run/<id> (unix
	// sockets), DataDir/log/<id>.log and DataDir/engine/journal there.
	DataDir string
	Driver  Driver
	Logger  zerolog.Logger
	// StepHook, for tests only, is called after each named step of Clone,
	// Snapshot, InitVolume and Destroy, so a test can kill the process between
	// two steps.
	StepHook func(step string)
	// StartTimeout bounds how long Start waits for an instance to accept
	// connections (crash recovery included). Default 2 minutes.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after a fast shutdown request before
	// it asks for an immediate one. Default 30 seconds.
	StopTimeout time.Duration
}

// Engine runs PostgreSQL instances on volumes of one Driver.
type Engine struct {
	opts    Options
	drv     Driver
	log     zerolog.Logger
	bin     binaries
	user    runAs
	runDir  string
	logDir  string
	jrnlDir string

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	procs map[string]*child // instances this process started, to reap them

	readerMu sync.Mutex
	readerPw map[string]string // ReaderRole's password per instance, this run only
}

// New finds the PostgreSQL binaries, resolves engine.run_as and prepares the
// engine's directories under DataDir. It does not touch volumes: call Recover
// for that.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Driver == nil {
		return nil, fmt.Errorf("engine: no storage driver")
	}
	if !filepath.IsAbs(opts.DataDir) {
		return nil, fmt.Errorf("engine: data dir %q must be an absolute path", opts.DataDir)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 30 * time.Second
	}
	if opts.Config.ListenAddress == "" {
		opts.Config.ListenAddress = "127.0.0.1"
	}
	if opts.Config.RunAs == "" {
		opts.Config.RunAs = DefaultRunAs
	}
	bin, err := findBinaries(ctx, opts.Config.PostgresBin)
	if err != nil {
		return nil, err
	}
	user, err := resolveRunAs(opts.Config.RunAs)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		opts:     opts,
		drv:      opts.Driver,
		log:      opts.Logger.With().Str(logkey.Component, "engine").Str(logkey.Driver, opts.Driver.Name()).Logger(),
		bin:      bin,
		user:     user,
		runDir:   filepath.Join(opts.DataDir, "run"),
		logDir:   filepath.Join(opts.DataDir, "log"),
		jrnlDir:  filepath.Join(opts.DataDir, "engine", "journal"),
		locks:    map[string]*sync.Mutex{},
		procs:    map[string]*child{},
		readerPw: map[string]string{},
	}
	// run/ must be traversable by run_as, which owns each socket dir inside,
	// but not listable: other users need not learn which volumes exist.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{e.runDir, 0o711}, {e.logDir, 0o750}, {e.jrnlDir, 0o700}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	if err := user.reachable(e.runDir, false); err != nil {
		return nil, err
	}
	if err := user.reachable(filepath.Dir(opts.Driver.Path("x")), true); err != nil {
		return nil, err
	}
	e.log.Info().Str("version", bin.version).Str(logkey.Path, bin.dir).Msg("postgres binaries found")
	e.warnSharedRunAs()
	return e, nil
}

// Driver is the storage driver the engine uses.
func (e *Engine) Driver() Driver { return e.drv }

// DriverName is the storage driver's name (btrfs, reflink, copy).
func (e *Engine) DriverName() string { return e.drv.Name() }

// Version is the PostgreSQL major version of the binaries, e.g. "15".
func (e *Engine) Version() string { return e.bin.version }

// BinDir is the directory holding postgres and initdb.
func (e *Engine) BinDir() string { return e.bin.dir }

// DataPath is the PostgreSQL data directory inside volume id.
func (e *Engine) DataPath(id string) string { return filepath.Join(e.drv.Path(id), "pgdata") }

// LogPath is the server log of volume id's instance.
func (e *Engine) LogPath(id string) string { return filepath.Join(e.logDir, id+".log") }

func (e *Engine) socketDir(id string) string { return filepath.Join(e.runDir, id) }

// Ids become directory names and socket paths: keep them plain and short
// (a unix socket path must fit in 107 bytes).
var idRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$`)

func (e *Engine) checkID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("%w %q (use letters, digits, '.', '_', '-'; at most 64)", ErrInvalidID, id)
	}
	return nil
}

// lock serializes operations on one volume id.
func (e *Engine) lock(id string) func() {
	e.mu.Lock()
	m, ok := e.locks[id]
	if !ok {
		m = &sync.Mutex{}
		e.locks[id] = m
	}
	e.mu.Unlock()
	m.Lock()
	return m.Unlock
}

func (e *Engine) step(name string) {
	e.log.Debug().Str(logkey.Step, name).Msg("step done")
	if e.opts.StepHook != nil {
		e.opts.StepHook(name)
	}
}
