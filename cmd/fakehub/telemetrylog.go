package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// The telemetry log: one INFO line per message (properties, not bodies) up
// to telemetryLogRate a second; above that the messages are counted and a
// summary line is logged every telemetrySummaryEvery. Under a flood a line per
// message cost more CPU than the hub's own handling of the message (17 % of
// the process in a perf profile of 100 devices at QoS 1, most of it
// formatting and unbuffered writes to stderr). --log-level debug logs every
// message.
const (
	telemetryLogRate      = 10 // lines per second, in bursts of as many
	telemetrySummaryEvery = 10 * time.Second
)

// logTelemetry logs captured telemetry until ctx ends.
func logTelemetry(ctx context.Context, srv *fakehub.Server, log *slog.Logger) {
	everyOne := log.Enabled(ctx, slog.LevelDebug)
	st := srv.Telemetry()
	tokens, refilled := float64(telemetryLogRate), time.Now()
	var last uint64     // sequence number of the last message read
	var unlogged uint64 // messages not logged since the last summary
	var since time.Time // when the first of them came
	summarise := func(now time.Time) {
		if unlogged > 0 {
			secs := now.Sub(since).Seconds()
			log.Info("telemetry not logged one by one", "messages", unlogged, "seconds", round1(secs),
				"perSecond", round1(float64(unlogged)/max(secs, 0.1)),
				"hint", "above 10 messages a second they are counted, not logged; --log-level debug logs each")
		}
		unlogged, since = 0, time.Time{}
	}
	for {
		next := ctx
		cancel := func() {}
		if unlogged > 0 {
			next, cancel = context.WithDeadline(ctx, since.Add(telemetrySummaryEvery))
		}
		m, err := st.Next(next)
		cancel()
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				skipped(&unlogged, &since, st.SkipToEnd(), now)
			}
			summarise(now)
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if last != 0 && m.SequenceNumber > last+1 {
			skipped(&unlogged, &since, m.SequenceNumber-last-1, now)
		}
		last = m.SequenceNumber
		tokens = min(tokens+now.Sub(refilled).Seconds()*telemetryLogRate, telemetryLogRate)
		refilled = now
		if everyOne || tokens >= 1 {
			tokens--
			logMessage(log, m)
		} else {
			skipped(&unlogged, &since, 1, now)
		}
		if unlogged > 0 && now.Sub(since) >= telemetrySummaryEvery {
			summarise(now)
		}
		if !everyOne && tokens < 1 {
			// Out of lines: wait for the next one, then skip what came
			// meanwhile without building it.
			select {
			case <-time.After(time.Second / telemetryLogRate):
			case <-ctx.Done():
				skipped(&unlogged, &since, st.SkipToEnd(), time.Now())
				summarise(time.Now())
				return
			}
			if n := st.SkipToEnd(); n > 0 {
				skipped(&unlogged, &since, n, time.Now())
				last = 0 // the next message's number says nothing about a gap
			}
		}
	}
}

func skipped(unlogged *uint64, since *time.Time, n uint64, now time.Time) {
	if n == 0 {
		return
	}
	if *unlogged == 0 {
		*since = now
	}
	*unlogged += n
}

func logMessage(log *slog.Logger, m iothub.Event) {
	attrs := []any{"deviceId", m.DeviceID, "bytes", len(m.Payload), "seq", m.SequenceNumber}
	if m.ModuleID != "" {
		attrs = append(attrs, "moduleId", m.ModuleID)
	}
	if len(m.SystemProperties) > 0 {
		attrs = append(attrs, "system", m.SystemProperties)
	}
	if len(m.Properties) > 0 {
		attrs = append(attrs, "properties", m.Properties)
	}
	log.Info("telemetry", attrs...)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
