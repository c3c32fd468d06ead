// Command demo is `make demo`: it starts a throwaway source cluster full of
// fake PII, a pgtwin daemon with a config under a temp dir, syncs a masked
// twin, makes a branch, and shows source and branch rows side by side.
// `make demo-stop` (demo --stop) removes everything it made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

type options struct {
	bin       string
	dir       string
	stop      bool
	customers int
}

func run(ctx context.Context, args []string) error {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "bin/pgtwin", "the pgtwin binary")
	fs.StringVar(&o.dir, "dir", "/tmp/pgtwin-demo", "where the demo keeps everything")
	fs.BoolVar(&o.stop, "stop", false, "stop the demo and remove everything it made")
	fs.IntVar(&o.customers, "customers", 200000, "customers in the sample source (5 rows each across tables)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if os.Geteuid() != 0 {
		return errors.New("the demo needs root (it loop-mounts a btrfs pool and runs postgres as the postgres user); run it with sudo")
	}
	if o.stop {
		return teardown(o.dir)
	}
	return demo(ctx, o)
}
