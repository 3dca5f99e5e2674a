package fakehub

import (
	"fmt"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// aclHook enforces IoT Hub's topic and packet rules. Violations close the
// connection from OnPacketRead (packets.ErrRejectPacket: nothing is written,
// whatever the QoS), as IoT Hub does; mochi's own ACL path would drop QoS 0
// silently and send an MQTT 5 DISCONNECT for QoS 1.
type aclHook struct {
	mqtt.HookBase
	s *Server
}

func (h *aclHook) ID() string { return "fakehub-acl" }

func (h *aclHook) Provides(b byte) bool {
	return b == mqtt.OnPacketRead || b == mqtt.OnACLCheck || b == mqtt.OnPacketSent
}

// classifyPublish applies the grammar of pkg/iothub (and the bag quirk).
func (s *Server) classifyPublish(id iothub.Identity, topic string) (iothub.DevicePublish, error) {
	if s.opts.Quirks.AcceptLeadingQuestionMarkInBag {
		return iothub.ClassifyPublish(id, topic, iothub.AllowQuestionMarkBag())
	}
	return iothub.ClassifyPublish(id, topic)
}

func (h *aclHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (_ packets.Packet, err error) {
	switch pk.FixedHeader.Type {
	case packets.Publish, packets.Subscribe, packets.Puback:
	default:
		return pk, nil
	}
	defer h.s.recoverHook("OnPacketRead", cl, &err)
	s := h.s
	ss := s.sessions.get(cl)
	if ss == nil {
		return pk, packets.ErrRejectPacket // not authenticated: cannot happen after CONNECT
	}
	switch pk.FixedHeader.Type {
	case packets.Puback:
		s.cloudEvents.puback(ss, pk.PacketID)
	case packets.Publish:
		if pk.FixedHeader.Qos > 1 {
			s.closedFor(ss.rejection(ReasonQoS2Publish, fmt.Sprintf("PUBLISH to %q with QoS 2; IoT Hub supports QoS 0 and 1", pk.TopicName)))
			return pk, packets.ErrRejectPacket
		}
		// A device sends the same topic again and again (the same property
		// bag): the classification of the last one is reused, exactly.
		p, err := ss.lastPublish, error(nil)
		if pk.TopicName != ss.lastTopic || pk.TopicName == "" {
			p, err = s.classifyPublish(ss.id, pk.TopicName)
			ss.lastTopic, ss.lastPublish = "", iothub.DevicePublish{}
			if err == nil {
				ss.lastTopic, ss.lastPublish = pk.TopicName, p
			}
		}
		if err != nil {
			if s.opts.Quirks.IgnoreForbiddenPublish {
				return pk, nil // PUBACKed and dropped in OnPublish
			}
			s.closedFor(ss.rejection(ReasonTopicForbidden, err.Error()))
			return pk, packets.ErrRejectPacket
		}
		if p.Kind == iothub.TopicTelemetry {
			if size := len(pk.Payload) + p.Properties.Size(); size > iothub.MaxTelemetrySize {
				s.closedFor(ss.rejection(ReasonMessageTooLarge, fmt.Sprintf("telemetry of %d bytes (body %d + properties %d); the limit is %d",
					size, len(pk.Payload), size-len(pk.Payload), iothub.MaxTelemetrySize)))
				return pk, packets.ErrRejectPacket
			}
		}
	case packets.Subscribe:
		for _, f := range pk.Filters {
			if _, err := iothub.ClassifySubscribe(ss.id, f.Filter); err != nil {
				if s.opts.Quirks.SubackOnForbiddenSubscribe {
					continue // OnACLCheck refuses it: SUBACK 0x80
				}
				s.closedFor(ss.rejection(ReasonSubscribeForbidden, err.Error()))
				return pk, packets.ErrRejectPacket
			}
		}
		filters := make([]string, len(pk.Filters))
		for i, f := range pk.Filters {
			filters[i] = f.Filter
		}
		ss.subMu.Lock()
		if ss.pendingSubs == nil {
			ss.pendingSubs = map[uint16][]string{}
		}
		ss.pendingSubs[pk.PacketID] = filters
		ss.subMu.Unlock()
	}
	return pk, nil
}

// OnACLCheck: publishes were checked in OnPacketRead. Reads are checked
// for filters at SUBSCRIBE and for each concrete topic mochi would deliver.
func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	defer h.s.recoverHook("OnACLCheck", cl, nil)
	if cl.Net.Inline || write {
		return true
	}
	ss := h.s.sessions.get(cl)
	if ss == nil {
		return false
	}
	if _, err := iothub.ClassifySubscribe(ss.id, topic); err == nil {
		return !strings.Contains(topic, "+") || strings.HasSuffix(topic, "/#") // filters
	}
	// A concrete topic being delivered: only the identity's own C2D topic or $iothub.
	if strings.HasPrefix(topic, "$iothub/") {
		return true
	}
	id, _, err := iothub.ParseC2DTopic(topic)
	return err == nil && id == ss.id
}

// OnPacketSent tells the cloud side that a SUBACK went out.
func (h *aclHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Suback {
		return // every packet written comes here: the others skip the deferred recover
	}
	defer h.s.recoverHook("OnPacketSent", cl, nil)
	ss := h.s.sessions.get(cl)
	if ss == nil {
		return
	}
	ss.subMu.Lock()
	filters := ss.pendingSubs[pk.PacketID]
	delete(ss.pendingSubs, pk.PacketID)
	ss.subMu.Unlock()
	h.s.cloudEvents.subscribed(ss, filters, pk.ReasonCodes)
}
