package twin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/internal/config"
	"github.com/pgtwin/pgtwin/internal/logkey"
	"github.com/pgtwin/pgtwin/internal/startstop"
	"github.com/pgtwin/pgtwin/twin/api"
)

// Engine is what the twin needs from package engine; *engine.Engine
// satisfies it.
type Engine interface {
	InitVolume(ctx context.Context, id string, opts engine.InitOptions) error
	Snapshot(ctx context.Context, src, id string) error
	Clone(ctx context.Context, src, id string) error
	Destroy(ctx context.Context, id string) error
	Usage(ctx context.Context, id string) (engine.Usage, error)
	Volumes(ctx context.Context) ([]string, error)
	Start(ctx context.Context, id string, spec engine.InstanceSpec) (*engine.Instance, error)
	Stop(ctx context.Context, id string) error
	Instance(id string) (*engine.Instance, bool)
	Recover(ctx context.Context) ([]string, error)
	AllocatePort(inUse map[int]bool) (int, error)
	SetReadOnly(id string, on bool) error
	ReadOnly(id string) bool
	LimitVolume(ctx context.Context, id string, bytes int64) error
	SetupLogin(ctx context.Context, inst *engine.Instance, appDB string, l engine.Login) error
	ReaderConnString(ctx context.Context, inst *engine.Instance, db string) (string, error)
	WatchSpace(id string) *engine.SpaceWatch
	DriverName() string
	PoolSpace() (free, total int64, ok bool)
	Version() string
}

// Syncer is the sync as the socket API sees it. Until one is set, the sync
// routes answer 501.
type Syncer interface {
	Status() api.SyncStatus
	Trigger(ctx context.Context, req api.SyncRequest) (api.SyncStatus, error)
}

// SyncStopper is a Syncer that can stop following the source (logical
// mode), for POST /v1/sync/stop.
type SyncStopper interface {
	StopFollowing(ctx context.Context, req api.SyncStopRequest) (api.SyncStatus, error)
}

// Options configure a Twin.
type Options struct {
	Config config.Config
	Engine Engine
	Logger zerolog.Logger
	// SweepInterval is how often expired branches and unneeded snapshots are
	// removed. Default 30 seconds.
	SweepInterval time.Duration
	// DiskCapInterval is how often running branches' changed bytes are
	// checked against branches.max_changed_bytes. Default 5 seconds.
	DiskCapInterval time.Duration
	// DiskCapMargin is how far past branches.max_changed_bytes a hard
	// limit (btrfs qgroup) stops a branch's writes should the sampler be
	// late. Default half the cap, at least 1 GiB.
	DiskCapMargin int64
	// Version is the daemon's version for /v1/status.
	Version string
}

// Twin owns main, its snapshots and the branches.
type Twin struct {
	cfg     config.Config
	eng     Engine
	log     zerolog.Logger
	st      *store
	opts    Options
	started time.Time

	// mu guards the records below; it is never held across a clone, a
	// start or anything else slow.
	mu       sync.Mutex
	main     *mainRecord
	snaps    map[string]*snapshotRecord
	branches map[string]*branchRecord // by name
	locks    map[string]*sync.Mutex   // by branch id
	syncer   Syncer
	usage    map[string]usageEntry // by branch id
	fleet    fleet                 // listeners and running instances (proxies.go)

	met *metrics

	// mainMu serializes operations on main (snapshot, replace).
	mainMu sync.Mutex

	kick chan struct{}
	life startstop.Base // the sweeper, idle and disk-cap loops
}

// superuser is the bootstrap role of every cluster pgtwin makes. It is not an
// OS user name anyone is likely to have, so no branch owner's role collides
// with it.
const superuser = "pgtwin_super"

// ownerRole owns the objects the sync restores; every branch's login role is
// a member of it.
const ownerRole = "pgtwin_owner"

// New prepares a Twin from config. It touches nothing until Start.
func New(ctx context.Context, opts Options) (*Twin, error) {
	if opts.Engine == nil {
		return nil, fmt.Errorf("twin: no engine")
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = 30 * time.Second
	}
	if opts.DiskCapInterval <= 0 {
		opts.DiskCapInterval = 5 * time.Second
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	st, err := openStore(filepath.Join(opts.Config.Daemon.DataDir, "state"))
	if err != nil {
		return nil, err
	}
	t := &Twin{
		cfg:      opts.Config,
		eng:      opts.Engine,
		log:      opts.Logger.With().Str(logkey.Component, "twin").Logger(),
		st:       st,
		opts:     opts,
		snaps:    map[string]*snapshotRecord{},
		branches: map[string]*branchRecord{},
		locks:    map[string]*sync.Mutex{},
		usage:    map[string]usageEntry{},
		kick:     make(chan struct{}, 1),
		fleet:    newFleet(),
	}
	t.met = newMetrics(t)
	return t, nil
}

// Start reconciles the records with the engine's volumes and processes, makes
// main if there is none, opens every branch's listener, then runs the
// sweeper and the idle suspender. When it returns nil every branch is ready
// (running), suspended (stopped; its listener starts it on connect), gone,
// or failed with the reason logged.
func (t *Twin) Start(ctx context.Context) error {
	sctx, err := t.life.Begin(ctx)
	if err != nil {
		return fmt.Errorf("twin: %w", err)
	}
	t.started = time.Now().UTC()
	if err := t.reconcile(ctx); err != nil {
		t.life.Stop()
		return err
	}
	t.settleFleet(ctx)
	if err := t.serveMetrics(sctx); err != nil {
		t.life.Stop()
		t.closeProxies()
		return err
	}
	t.life.Go(func() { t.sweepLoop(sctx) })
	t.life.Go(func() { t.idleLoop(sctx) })
	t.life.Go(func() { t.diskCapLoop(sctx) })
	return nil
}

// Stop ends the sweeper and closes the branches' listeners. Branches and
// main keep running; the next Start adopts them. Safe before Start and
// more than once.
func (t *Twin) Stop() {
	t.life.Stop()
	t.closeProxies()
}

// SetSyncer plugs the sync into the socket API.
func (t *Twin) SetSyncer(s Syncer) {
	t.mu.Lock()
	t.syncer = s
	t.mu.Unlock()
}

func (t *Twin) getSyncer() Syncer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.syncer
}

// lockFor returns the mutex serializing operations on branch id. Call with
// t.mu held.
func (t *Twin) lockFor(id string) *sync.Mutex {
	m, ok := t.locks[id]
	if !ok {
		m = &sync.Mutex{}
		t.locks[id] = m
	}
	return m
}

// lockBranch takes the lock of the branch now named name and returns its
// record, or nil if there is none. The record is re-checked after the lock
// is taken, since the branch may have been deleted (and the name reused)
// while we waited.
func (t *Twin) lockBranch(name string) (*branchRecord, func()) {
	for {
		t.mu.Lock()
		rec := t.branches[name]
		if rec == nil {
			t.mu.Unlock()
			return nil, func() {}
		}
		m := t.lockFor(rec.ID)
		t.mu.Unlock()
		m.Lock()
		t.mu.Lock()
		same := t.branches[name] == rec
		t.mu.Unlock()
		if same {
			return rec, m.Unlock
		}
		m.Unlock()
	}
}

// updateBranch applies fn to a copy of rec, records it durably, then makes it
// current. Call with t.mu held.
func (t *Twin) updateBranch(rec *branchRecord, fn func(r *branchRecord)) error {
	c := *rec
	fn(&c)
	if err := t.st.saveBranch(c); err != nil {
		return err
	}
	*rec = c
	return nil
}

func (t *Twin) updateSnapshot(rec *snapshotRecord, fn func(r *snapshotRecord)) error {
	c := *rec
	fn(&c)
	if err := t.st.saveSnapshot(c); err != nil {
		return err
	}
	*rec = c
	return nil
}

func (t *Twin) updateMain(fn func(m *mainRecord)) error {
	c := *t.main
	fn(&c)
	if err := t.st.saveMain(c); err != nil {
		return err
	}
	*t.main = c
	return nil
}

// portsInUse are the ports records hold. Call with t.mu held.
func (t *Twin) portsInUse() map[int]bool {
	used := map[int]bool{}
	if t.main != nil {
		used[t.main.Port] = true
		if t.main.PendingPort != 0 {
			used[t.main.PendingPort] = true
		}
	}
	for _, b := range t.branches {
		used[b.Port] = true
	}
	return used
}

// kickSweeper asks the sweeper to run soon, e.g. after a reset left a
// snapshot unused.
func (t *Twin) kickSweeper() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *Twin) pid() int { return os.Getpid() }
