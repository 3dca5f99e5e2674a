package main

import (
	"time"

	"github.com/hubkit/hubkit/internal/procfs"
)

// rssSampler polls a process's VmRSS and keeps the highest value.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	max  int64
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if r, err := procfs.Memory(pid, "VmRSS"); err == nil && r > s.max {
				s.max = r
			}
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

// Max stops sampling and returns the highest RSS seen.
func (s *rssSampler) Max() int64 {
	close(s.stop)
	<-s.done
	return s.max
}

// settle waits (at most 15 s) until pid is idle: under 2 % of a core over a
// quarter of a second. A server still closes the connections of the phase
// before (devicesim has exited, the server's side has not caught up), and
// that CPU belongs to that phase, not to the next one.
func settle(pid int) {
	const every = 250 * time.Millisecond
	prev, err := procfs.CPUTime(pid)
	if err != nil {
		return
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(every)
		cur, err := procfs.CPUTime(pid)
		if err != nil || cur-prev < every/50 {
			return
		}
		prev = cur
	}
}
