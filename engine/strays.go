package engine

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/pgtwin/pgtwin/internal/logkey"
)

// killStrays kills processes working in volume id's data directory that no
// postmaster.pid accounts for. A daemon killed right after it launched
// postgres leaves one: the postmaster has not yet written its pid file, so
// nothing can adopt it, and it would later hold the lock on a fresh clone of
// the same volume. Postgres is launched with its data directory as working
// directory, so the process table identifies it from its first instant.
func (e *Engine) killStrays(ctx context.Context, id string) {
	pids := processesIn(e.DataPath(id))
	if len(pids) == 0 {
		return
	}
	e.log.Warn().Str(logkey.Volume, id).Ints(logkey.PID, pids).Msg("killing postgres processes no pid file accounts for")
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(processesIn(e.DataPath(id))) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// processesIn lists live (non-zombie) processes whose working directory is dir.
func processesIn(dir string) []int {
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink("/proc/" + en.Name() + "/cwd")
		if err != nil || cwd != want {
			continue
		}
		if zombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' && i+2 < len(b) {
			return b[i+2] == 'Z'
		}
	}
	return false
}
