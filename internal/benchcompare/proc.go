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
