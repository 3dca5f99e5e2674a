package procfs

import (
	"runtime"
	"testing"
	"time"
)

func TestParseStatus(t *testing.T) {
	status := "Name:\tfakehub\nVmHWM:\t  567188 kB\nVmRSS:\t   40060 kB\nThreads:\t9\n"
	for field, want := range map[string]int64{"VmRSS": 40060 << 10, "VmHWM": 567188 << 10} {
		if got, err := parseStatus(status, field); err != nil || got != want {
			t.Errorf("parseStatus(%s) = %d, %v; want %d", field, got, err, want)
		}
	}
	if _, err := parseStatus(status, "VmSwap"); err == nil {
		t.Error("parseStatus(VmSwap) of a status without it: no error")
	}
}

// The command name may hold spaces and parentheses; utime and stime are
// fields 14 and 15 (here 854 and 446 ticks of 1/100 s).
func TestParseStatCPU(t *testing.T) {
	stat := "26785 (fake (hub) x) S 1 26782 13058 0 -1 4194304 153255 0 0 0 854 446 0 0 20 0 11 0"
	got, err := parseStatCPU(stat, 100)
	if want := 13 * time.Second; err != nil || got != want {
		t.Errorf("parseStatCPU = %v, %v; want %v", got, err, want)
	}
	if _, err := parseStatCPU("26785 (x) S 1", 100); err == nil {
		t.Error("parseStatCPU of a short line: no error")
	}
}

// On Linux the calling process has a resident set and has used CPU.
func TestSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	if rss, err := Memory(0, "VmRSS"); err != nil || rss <= 0 {
		t.Errorf("Memory(self, VmRSS) = %d, %v; want > 0", rss, err)
	}
	if _, err := CPUTime(0); err != nil {
		t.Errorf("CPUTime(self): %v", err)
	}
}
