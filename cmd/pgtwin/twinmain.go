package main

import (
	"context"

	"github.com/pgtwin/pgtwin/engine"
	twinsync "github.com/pgtwin/pgtwin/sync"
	"github.com/pgtwin/pgtwin/twin"
)

// mainTwin is the twin's main as the sync sees it.
type mainTwin struct{ tw *twin.Twin }

var (
	_ twin.Engine   = (*engine.Engine)(nil)
	_ twinsync.Main = mainTwin{}
	_ twin.Syncer   = (*twinsync.Syncer)(nil)
	_ twin.Masking  = (*twinsync.Syncer)(nil)
)

func (m mainTwin) Replace(ctx context.Context, loc engine.DatabaseLocale, fill func(ctx context.Context, conn string) error) (string, error) {
	snap, err := m.tw.ReplaceMain(ctx, loc, func(ctx context.Context, inst *engine.Instance) error {
		return fill(ctx, inst.ConnString(inst.Superuser, m.tw.MainDatabase()))
	})
	return snap.ID, err
}

func (m mainTwin) ConnString(ctx context.Context) (string, error) {
	inst, err := m.tw.MainInstance(ctx)
	if err != nil {
		return "", err
	}
	return inst.ConnString(inst.Superuser, m.tw.MainDatabase()), nil
}

func (m mainTwin) Snapshot(ctx context.Context, sourceLSN string) (string, error) {
	snap, err := m.tw.TakeSnapshot(ctx, twin.SnapshotOptions{SourceLSN: sourceLSN})
	return snap.ID, err
}
