// Package procfs reads a process's memory and CPU figures from Linux's
// /proc: what devicesim load reports about itself and make bench-compare
// about the servers it measures. Elsewhere the functions return errors.
package procfs

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory returns a field of /proc/PID/status that is in kB (VmRSS, VmHWM)
// in bytes; pid 0 is the calling process.
func Memory(pid int, field string) (int64, error) {
	b, err := os.ReadFile(path(pid, "status"))
	if err != nil {
		return 0, err
	}
	return parseStatus(string(b), field)
}

func parseStatus(status, field string) (int64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("procfs: %s %q: %w", field, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("procfs: no %s in /proc status", field)
}

// CPUTime returns the user plus system CPU time pid has used (0: the
// calling process).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(path(pid, "stat"))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b), clockTicks())
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/PID/stat
// line; the command name (field 2, in parentheses) may hold spaces.
func parseStatCPU(stat string, ticks int64) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("procfs: unexpected stat line %q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("procfs: unexpected stat line %q", stat)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("procfs: unexpected stat line %q", stat)
	}
	return time.Duration(u+s) * time.Second / time.Duration(ticks), nil
}

// clockTicks is the unit of /proc/PID/stat's CPU times (sysconf CLK_TCK).
var clockTicks = sync.OnceValue(func() int64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
})

func path(pid int, file string) string {
	if pid == 0 {
		return "/proc/self/" + file
	}
	return "/proc/" + strconv.Itoa(pid) + "/" + file
}
