package twinsync

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// While it is filled, the new main needs no crash safety: a crash or a
// failed run throws the half-built volume away (twin.ReplaceMain removes
// it, or the next daemon start does from its pending record) and the old
// main is untouched until the fill has succeeded. So the fill runs without
// fsync, full-page writes, synchronous commit or autovacuum, and with index
// builds sized to the host; endFill puts every setting back, checkpoints
// and syncs the filesystem before the run reports success, so the main
// that is snapshotted and switched to is as durable as one filled slowly.
//
// The settings go through ALTER SYSTEM, as they must reach pg_restore's
// sessions too (the twin's connection string pins options of its own, so
// PGOPTIONS would not).

// fillSettings are the ALTER SYSTEM settings of the fill.
func fillSettings(parallel int) map[string]string {
	return map[string]string{
		"fsync":                            "off",
		"full_page_writes":                 "off",
		"synchronous_commit":               "off",
		"autovacuum":                       "off",
		"maintenance_work_mem":             strconv.FormatInt(maintenanceMem(memAvailable(), parallel)>>20, 10) + "MB",
		"max_parallel_maintenance_workers": strconv.Itoa(maintenanceWorkers(runtime.NumCPU())),
	}
}

// maintenanceMem shares a quarter of the available memory among the index
// builds that may run at once (up to parallel batches of up to parallel
// sessions), each between 64 MB and 2 GB; 256 MB when the available memory
// is unknown. A parallel build shares its maintenance_work_mem among its
// workers.
func maintenanceMem(avail int64, parallel int) int64 {
	if avail <= 0 {
		return 256 << 20
	}
	p := int64(max(parallel, 1))
	return min(max(avail/4/(p*p), 64<<20), 2<<30)
}

// maintenanceWorkers lets one index build use every core but the one its
// leader runs on (at most 4): the largest table's index is built after
// every other table has copied, alone on the machine.
func maintenanceWorkers(cpus int) int {
	return min(max(cpus-1, 0), 4)
}

// memAvailable is MemAvailable from /proc/meminfo in bytes, or 0.
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "MemAvailable: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	return 0
}

// beginFill applies the fill settings to the target.
func (r *run) beginFill(ctx context.Context) error {
	set := fillSettings(r.parallel)
	for _, k := range sortedKeys(set) {
		if _, err := r.tgtConn.Exec(ctx, "ALTER SYSTEM SET "+k+" = "+quoteLiteral(set[k])); err != nil {
			return fmt.Errorf("fill settings: %w", redact(err))
		}
	}
	if _, err := r.tgtConn.Exec(ctx, "SELECT pg_catalog.pg_reload_conf()"); err != nil {
		return fmt.Errorf("fill settings: %w", redact(err))
	}
	r.filling = set
	r.log.Debug().Str("maintenance_work_mem", set["maintenance_work_mem"]).
		Str("max_parallel_maintenance_workers", set["max_parallel_maintenance_workers"]).Msg("fill settings applied")
	return nil
}

// endFill checkpoints, syncs the filesystem of the target's data directory
// and only then puts the settings back: a checkpoint with fsync on would
// fsync the fill's files one by one, where one syncfs(2) flushes them all,
// and what initdb and the fill wrote without fsync reaches the disk before
// the run reports success. The target must be on this host (the twin's
// main is).
func (r *run) endFill(ctx context.Context) error {
	if r.filling == nil {
		return nil
	}
	r.wb.wait()
	begin := time.Now()
	if _, err := r.tgtConn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", redact(err))
	}
	checkpointed := time.Now()
	var dir string
	if err := r.tgtConn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
		return fmt.Errorf("target data directory: %w", redact(err))
	}
	if err := syncFS(dir); err != nil {
		return fmt.Errorf("make the new main durable: %w", err)
	}
	synced := time.Now()
	for _, k := range sortedKeys(r.filling) {
		if _, err := r.tgtConn.Exec(ctx, "ALTER SYSTEM RESET "+k); err != nil {
			return fmt.Errorf("reset fill settings: %w", redact(err))
		}
	}
	if _, err := r.tgtConn.Exec(ctx, "SELECT pg_catalog.pg_reload_conf()"); err != nil {
		return fmt.Errorf("reset fill settings: %w", redact(err))
	}
	r.filling = nil
	r.log.Debug().Dur("checkpoint_duration", checkpointed.Sub(begin)).Dur("syncfs_duration", synced.Sub(checkpointed)).
		Dur(logkey.Duration, time.Since(begin)).Msg("fill checkpointed, synced, settings reset")
	return nil
}

// syncFS flushes the filesystem holding dir (syncfs(2)): cheaper than
// fsyncing each of the cluster's files, and it also covers what initdb and
// the fill wrote with fsync off.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
