package fakehub

import (
	"testing"
	"time"
)

// TestMergeQuirks: every field of Quirks merges (a new field of another kind panics here
// first), switches OR, and numbers set by the caller win.
func TestMergeQuirks(t *testing.T) {
	q := Quirks{KeepAliveCap: time.Minute}
	mergeQuirks(&q, Quirks{ExactDeviceKeyScope: true, KeepAliveCap: time.Hour, DisabledDeviceCode: 3})
	if !q.ExactDeviceKeyScope || q.KeepAliveCap != time.Minute || q.DisabledDeviceCode != 3 {
		t.Errorf("merged %+v", q)
	}
	if !ProfileEdgeHub.Quirks().ExactDeviceKeyScope {
		t.Error("the edgehub profile does not apply IoT Edge hub's exact audience rule")
	}
}
