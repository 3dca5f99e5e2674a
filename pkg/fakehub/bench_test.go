package fakehub_test

import (
	"bytes"
	"crypto/tls"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/hubkit/hubkit/internal/brokertest"
	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/pkg/fakehub"
)

// BenchmarkTelemetry compares telemetry throughput through fakehub (auth,
// ACL, classification, capture) with a bare mochi broker that allows
// everything, with the same paho client, QoS 1, TLS on both:
//
//	go test -run '^$' -bench Telemetry -benchtime 20000x ./pkg/fakehub/
func BenchmarkTelemetry(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 256)
	topic := "devices/dev1/messages/events/%24.ct=application%2Fjson&k=v"
	b.Run("fakehub", func(b *testing.B) {
		h := startHub(b, fakehub.Options{TelemetryBuffer: 1000})
		r, err := pahoConnect(b, h, dev1, userName("localhost", dev1), deviceToken("localhost", dev1, keyDev1A))
		if err != nil {
			b.Fatal(err)
		}
		publishN(b, r.c, topic, payload)
	})
	b.Run("bare-mochi", func(b *testing.B) {
		addr, tlsConf := startBareMochi(b)
		o := paho.NewClientOptions().AddBroker("ssl://" + addr).SetClientID("dev1").SetProtocolVersion(4).
			SetTLSConfig(tlsConf).SetAutoReconnect(false)
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect: %v", tok.Error())
		}
		b.Cleanup(func() { c.Disconnect(0) })
		publishN(b, c, topic, payload)
	})
}

func publishN(b *testing.B, c paho.Client, topic string, payload []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	toks := make([]paho.Token, 0, b.N)
	start := time.Now()
	for range b.N {
		toks = append(toks, c.Publish(topic, 1, false, payload))
	}
	for _, t := range toks {
		if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
			b.Fatalf("publish: %v", t.Error())
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// startBareMochi runs mochi with the same TLS and QoS settings as fakehub
// and an allow-all hook.
func startBareMochi(b *testing.B) (string, *tls.Config) {
	now := time.Now()
	ca, err := certs.NewCA("bench CA", time.Hour, now, nil)
	if err != nil {
		b.Fatal(err)
	}
	srvTLS, err := ca.ServerTLS([]string{"localhost", "127.0.0.1"}, time.Hour, now)
	if err != nil {
		b.Fatal(err)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1
	broker := brokertest.Start(b, brokertest.Options{TLS: srvTLS, Capabilities: caps})
	return broker.Addr, ca.ClientTLS("localhost")
}
