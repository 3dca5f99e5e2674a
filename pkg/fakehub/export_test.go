package fakehub

import "github.com/hubkit/hubkit/pkg/iothub"

// Deliver exposes the cloud side's direct write for tests (C2D to real clients).
func Deliver(s *Server, id iothub.Identity, topic string, payload []byte, qos byte) (uint16, error) {
	return s.deliver(id, topic, payload, qos)
}

// LogBuffer collects a hub's log output (safe for concurrent writes).
type LogBuffer = lockedBuffer
