package twin

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// instanceMemory sums the memory of every process working in one of the
// data directories dirs (a postmaster and its children keep its data
// directory as their working directory). Each process counts its
// proportional set size from /proc/PID/smaps_rollup, so shared buffers are
// counted once across an instance's processes; its RSS where PSS is not
// available.
func instanceMemory(dirs []string) int64 {
	if len(dirs) == 0 {
		return 0
	}
	want := map[string]bool{}
	for _, d := range dirs {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			want[r] = true
		}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range ents {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		cwd, err := os.Readlink("/proc/" + pid + "/cwd")
		if err != nil || !want[cwd] {
			continue
		}
		total += procMemory(pid)
	}
	return total
}

// procMemory is a process's PSS, else RSS, in bytes.
func procMemory(pid string) int64 {
	if b, err := os.ReadFile("/proc/" + pid + "/smaps_rollup"); err == nil {
		if kb, ok := kbField(b, "Pss:"); ok {
			return kb << 10
		}
	}
	if b, err := os.ReadFile("/proc/" + pid + "/status"); err == nil {
		if kb, ok := kbField(b, "VmRSS:"); ok {
			return kb << 10
		}
	}
	return 0
}

// kbField reads "Key:   123 kB" from a /proc file.
func kbField(b []byte, key string) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			n, err := strconv.ParseInt(string(f[0]), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
