package conformance

import (
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
)

var keepAliveCases = []Case{
	{
		ID:          "keepalive/close-after-1.5x",
		Requirement: "A client that goes silent is disconnected once 1.5 × its keep-alive passes, not before (keep-alive 2 s: closed between 3 s and 3 s plus a margin).",
		Section:     "docs/iothub-behavior.md §1.17, §10.6; " + docMQTT + " (Default keep-alive timeout); MQTT 3.1.1 §3.1.2.10",
		Certainty:   "C",
		Needs:       []string{NeedKeepAlive},
		run: func(e *env) {
			const keepAlive = 2 * time.Second
			p := e.connectPacket(e.dev, e.token(e.dev))
			p.KeepAlive = uint16(keepAlive / time.Second)
			// The hub cannot have read the CONNECT (its last inbound packet)
			// before we dialled, so time from here never overstates how long
			// it waited: an early close is certain, whatever the load.
			start := time.Now()
			ack, c, err := e.dial(p)
			if err != nil || ack.ReturnCode != 0 {
				e.Fatalf("CONNECT with keep-alive %v: %v CONNACK %d, want CONNACK 0", keepAlive, err, ack.ReturnCode)
			}
			latest := keepAlive*3/2 + 3*time.Second
			if err := c.ExpectClosed(latest); err != nil {
				e.Fatalf("silent for %v with keep-alive %v: %v, want the hub to close at 1.5 × keep-alive", latest, keepAlive, err)
			}
			if took := time.Since(start); took < keepAlive*3/2-50*time.Millisecond {
				e.Errorf("closed %v after CONNECT, want not before 1.5 × keep-alive (%v)", took.Round(time.Millisecond), keepAlive*3/2)
			} else {
				e.Logf("closed %v after dialling (keep-alive %v)", took.Round(time.Millisecond), keepAlive)
			}
		},
	},
	{
		ID:          "keepalive/traffic-resets-timer",
		Requirement: "Inbound traffic resets the keep-alive timer: a client with keep-alive 2 s that sends PINGREQ every second stays connected past 1.5 × keep-alive.",
		Section:     "docs/iothub-behavior.md §1.17 (any inbound traffic resets the timer); MQTT 3.1.1 §3.1.2.10",
		Certainty:   "C",
		Needs:       []string{NeedKeepAlive},
		run: func(e *env) {
			p := e.connectPacket(e.dev, e.token(e.dev))
			p.KeepAlive = 2
			ack, c, err := e.dial(p)
			if err != nil || ack.ReturnCode != 0 {
				e.Fatalf("CONNECT with keep-alive 2 s: %v CONNACK %d, want CONNACK 0", err, ack.ReturnCode)
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for i := 1; i <= 5; i++ {
				<-tick.C // pacing the client's traffic, not waiting for the hub
				if err := c.Pingreq(); err != nil {
					e.Fatalf("PINGREQ #%d (%d s after CONNECT): %v, want the connection open while the client talks", i, i, err)
				}
				if p, err := c.ReadPacket(answerWithin); err != nil || p.Type != mqttraw.TypePingresp {
					e.Fatalf("PINGREQ #%d (%d s after CONNECT): %s, want PINGRESP (traffic resets the 3 s timer)", i, i, packetOrErr(p, err))
				}
			}
		},
	},
}
