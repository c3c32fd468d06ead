package twinsync

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgtwin/pgtwin/internal/pgtest"
)

// userHZTick is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const userHZTick = 10 * time.Millisecond

// clusterCPU is the CPU a cluster's processes used so far: the postmaster,
// its live children and the children it reaped.
func clusterCPU(c *pgtest.Cluster) time.Duration {
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pm, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	var ticks int64
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := procStatFields(pid)
		if len(f) < 17 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		switch {
		case pid == pm:
			for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
				n, _ := strconv.ParseInt(f[i], 10, 64)
				ticks += n
			}
		case ppid == pm:
			for _, i := range []int{11, 12} {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				ticks += n
			}
		}
	}
	return time.Duration(ticks) * userHZTick
}

// procStatFields is /proc/pid/stat's fields after the command name, from state
// on (index 0 is state, 1 ppid, 11 utime).
func procStatFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// goCPU is this process's CPU so far (the follower runs in it).
func goCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuUse samples the CPU of a drain's parts.
type cpuUse struct{ src, dst, self time.Duration }

func sampleCPU(src, dst *pgtest.Cluster) cpuUse {
	return cpuUse{clusterCPU(src), clusterCPU(dst), goCPU()}
}

func (u cpuUse) since(before cpuUse) cpuUse {
	return cpuUse{u.src - before.src, u.dst - before.dst, u.self - before.self}
}

func (u cpuUse) String() string {
	r := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	return "cpu source " + r(u.src) + ", target " + r(u.dst) + ", go " + r(u.self)
}

// profileDrain writes a CPU profile of this process during one drain to
// $PGTWIN_BENCH_CPUPROFILE.<round> when that is set; call the result at
// the drain's end.
func profileDrain(t *testing.T, round int) func() {
	base := os.Getenv("PGTWIN_BENCH_CPUPROFILE")
	if base == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", base, round+1))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
