package c2d

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// FuzzDeliveryTopic checks that every message Enqueue accepts renders a delivery topic that
// pkg/iothub parses back to the same identity and properties.
func FuzzDeliveryTopic(f *testing.F) {
	f.Add("dev1", "", "m1", "c1", "application/json", "utf-8", "full", "k", "v")
	f.Add("d", "m", "a b&c=d", "%24", "", "", "", "$.x", "")
	f.Add("dev", "", "", "", "text/plain; charset=utf-8", "", "Negative", "a/b", "x+y%20")
	f.Fuzz(func(t *testing.T, dev, mod, mid, cid, ct, ce, ack, key, value string) {
		id := iothub.Identity{DeviceID: dev, ModuleID: mod}
		if id.Validate() != nil {
			return
		}
		q, err := New(Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = q.Enqueue(id, iothub.C2DMessage{MessageID: mid, CorrelationID: cid, ContentType: ct, ContentEncoding: ce,
			Ack: iothub.C2DAck(ack), Properties: iothub.Properties{{Key: key, Value: value}}})
		if err != nil {
			return
		}
		m := q.Take(id, 0)[0]
		topic := DeliveryTopic(id, m)
		gotID, props, err := iothub.ParseC2DTopic(topic)
		if err != nil {
			t.Fatalf("ParseC2DTopic(%q) = %v", topic, err)
		}
		if gotID != id {
			t.Errorf("identity %v, want %v", gotID, id)
		}
		if diff := cmp.Diff(m.WireProperties(), props); diff != "" {
			t.Errorf("properties of %q (-built +parsed):\n%s", topic, diff)
		}
	})
}
