package drivertest

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pgtwin/pgtwin/engine"
	"github.com/pgtwin/pgtwin/engine/enginetest"
)

// Opener makes Config.Open from a driver package's Open: the driver logs to
// the test, and a failed Open fails it.
func Opener[D engine.Driver](open func(context.Context, string, zerolog.Logger) (D, error)) func(t *testing.T, root string) engine.Driver {
	return func(t *testing.T, root string) engine.Driver {
		t.Helper()
		d, err := open(context.Background(), root, zerolog.New(zerolog.NewTestWriter(t)))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// LoopConfig is a Config on loop-mounted fstype filesystems: 1 GiB for the
// suite, tiny bytes (0: the smallest mkfs takes) for the disk-full test. The
// caller sets Open and what the driver promises.
func LoopConfig(fstype string, tiny int64) Config {
	return Config{
		Root:         func(t *testing.T) string { return enginetest.LoopFS(t, fstype, 1<<30) },
		TinyRoot:     func(t *testing.T) string { return enginetest.LoopFS(t, fstype, tiny) },
		Fill:         func(t *testing.T, dir string, leave int64) { enginetest.Fill(t, dir, leave) },
		FillMetadata: func(t *testing.T, dir string) int { return enginetest.FillMetadata(t, dir) },
	}
}
