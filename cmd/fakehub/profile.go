package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// cpuProfileOnSignal serves --cpu-profile FILE: each SIGUSR1 starts a CPU profile into FILE or,
// when one runs, ends it; the hub's exit ends it too. A script profiles exactly the phase it
// measures (scripts/dashboard-cpu), not the start-up or the fleet's handshakes. It returns a
// function that ends a running profile.
func cpuProfileOnSignal(ctx context.Context, path string, log *slog.Logger) func() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	var f *os.File
	stop := func() {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
			log.Info("CPU profile written", "file", path)
			f = nil
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				if f != nil {
					stop()
					continue
				}
				var err error
				if f, err = os.Create(path); err != nil {
					log.Error("--cpu-profile", "error", err)
					f = nil
					continue
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					log.Error("--cpu-profile", "error", fmt.Errorf("starting: %w", err))
					f.Close()
					f = nil
					continue
				}
				log.Info("CPU profile started", "file", path)
			}
		}
	}()
	return func() {
		<-done
		signal.Stop(sig)
		stop()
	}
}
