package twin

import (
	"strconv"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// ServiceInfo is the registry side of the service view: the fields of a twin that come from the
// device or module identity rather than from the twin store. Zero values render as the hub
// renders a fresh identity.
type ServiceInfo struct {
	Status                    string    // "enabled" (default) or "disabled"
	StatusReason              string    // omitted when empty
	StatusUpdateTime          time.Time // zero: "0001-01-01T00:00:00Z"
	ConnectionState           string    // "Disconnected" (default) or "Connected"
	LastActivityTime          time.Time
	CloudToDeviceMessageCount int
	AuthenticationType        string // "sas" (default), "selfSigned", "certificateAuthority", "none"
	ModelID                   string // the model-id the device announced; "" when none
	DeviceEtag                string // the identity's etag; omitted when empty
}

// ServiceView returns the twin in the shape of IoT Hub's REST API (GET /twins/{id}, or
// /twins/{id}/modules/{mid}): deviceId, moduleId (modules), etag, status and connection fields
// from info, version, tags (when any are set) and properties.desired/reported, each with
// $metadata and $version.
//
// $metadata holds $lastUpdated for the section and for every property, recursively; desired
// entries also carry $lastUpdatedVersion (the desired $version of that change), as the hub
// shows them. A section never updated shows $lastUpdated "0001-01-01T00:00:00Z".
func (s *Store) ServiceView(id iothub.Identity, info ServiceInfo) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.twin(id)

	b := []byte(`{"deviceId":`)
	b = appendString(b, id.DeviceID)
	if id.IsModule() {
		b = append(b, `,"moduleId":`...)
		b = appendString(b, id.ModuleID)
	}
	b = append(b, `,"etag":`...)
	b = appendString(b, etag(t.version))
	if info.DeviceEtag != "" {
		b = append(b, `,"deviceEtag":`...)
		b = appendString(b, info.DeviceEtag)
	}
	b = appendField(b, "status", or(info.Status, "enabled"))
	if info.StatusReason != "" {
		b = appendField(b, "statusReason", info.StatusReason)
	}
	b = appendField(b, "statusUpdateTime", formatTime(info.StatusUpdateTime))
	b = appendField(b, "connectionState", or(info.ConnectionState, "Disconnected"))
	b = appendField(b, "lastActivityTime", formatTime(info.LastActivityTime))
	b = append(b, `,"cloudToDeviceMessageCount":`...)
	b = strconv.AppendInt(b, int64(info.CloudToDeviceMessageCount), 10)
	b = appendField(b, "authenticationType", or(info.AuthenticationType, "sas"))
	b = append(b, `,"x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null}`...)
	b = appendField(b, "modelId", info.ModelID)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, t.version, 10)
	if len(t.tags.doc.keys) > 0 {
		b = append(b, `,"tags":`...)
		b = appendValue(b, t.tags.doc)
	}
	b = append(b, `,"properties":{"desired":`...)
	b = appendSection(b, t.desired, func(b []byte) []byte { return appendMeta(b, t.desired.doc, t.desired.stamp, true) })
	b = append(b, `,"reported":`...)
	b = appendSection(b, t.reported, func(b []byte) []byte { return appendMeta(b, t.reported.doc, t.reported.stamp, false) })
	return append(b, "}}"...)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, ',')
	b = appendString(b, name)
	b = append(b, ':')
	return appendString(b, value)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// formatTime renders a $metadata or registry time: UTC with milliseconds, as in the hub's
// documentation ("2016-03-30T16:24:48.789Z"); the zero time as "0001-01-01T00:00:00Z".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// appendMeta appends the $metadata object for o, whose own stamp is st.
func appendMeta(b []byte, o *object, st stamp, withVersion bool) []byte {
	b = append(b, `{"$lastUpdated":`...)
	b = appendString(b, formatTime(st.at))
	if withVersion && st.version != 0 {
		b = append(b, `,"$lastUpdatedVersion":`...)
		b = strconv.AppendInt(b, st.version, 10)
	}
	for _, k := range o.keys {
		b = append(b, ',')
		b = appendString(b, k)
		b = append(b, ':')
		if child, ok := o.vals[k].(*object); ok {
			b = appendMeta(b, child, o.stamp[k], withVersion)
		} else {
			b = appendMeta(b, newObject(), o.stamp[k], withVersion)
		}
	}
	return append(b, '}')
}
