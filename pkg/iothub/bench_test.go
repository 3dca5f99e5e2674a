package iothub_test

import (
	"testing"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// The hub classifies every PUBLISH and parses every CONNECT's user name; these keep an eye on
// what that costs per packet.

func BenchmarkClassifyPublishTelemetry(b *testing.B) {
	topic := "devices/dev1/messages/events/%24.mid=6f1e0c2a-3b5d-4f7a-9c8e-2d1b0a9f8e7d&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iothub.ClassifyPublish(dev1, topic); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassifyPublishTwinGet(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iothub.ClassifyPublish(dev1, "$iothub/twin/GET/?$rid=42"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassifySubscribe(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iothub.ClassifySubscribe(dev1, "devices/dev1/messages/devicebound/#"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseUserName(b *testing.B) {
	s := host + "/dev1/?api-version=2020-09-30&DeviceClientType=iothubclient%2f1.9.0%20(native%3b%20Linux%3b%20aarch64)"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iothub.ParseUserName(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkC2DTopic(b *testing.B) {
	p := iothub.Properties{{Key: "$.mid", Value: "6f1e0c2a-3b5d-4f7a-9c8e-2d1b0a9f8e7d"}, {Key: "$.to", Value: "/devices/dev1/messages/devicebound"}, {Key: "iothub-ack", Value: "none"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = iothub.C2DTopic(dev1, p)
	}
}

// BenchmarkParseProperties is the property bag of a typical SDK message:
// system properties in their %24. wire form and an application property.
func BenchmarkParseProperties(b *testing.B) {
	bag := "%24.mid=6f1e0c2a-3b5d-4f7a-9c8e-2d1b0a9f8e7d&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iothub.ParseProperties(bag); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeProperties(b *testing.B) {
	p := iothub.Properties{{Key: "$.mid", Value: "6f1e0c2a-3b5d-4f7a-9c8e-2d1b0a9f8e7d"}, {Key: "$.ct", Value: "application/json"}, {Key: "alert", Value: "high"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Encode()
	}
}
