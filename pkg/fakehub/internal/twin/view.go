package twin

import (
	"strconv"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// ServiceView returns the twin's own part of the service's view (IoT Hub's REST API, GET
// /twins/{id} or /twins/{id}/modules/{mid}): deviceId, moduleId (modules), etag, version,
// tags (nil when none are set) and properties.desired/reported, each with $metadata and
// $version. The registry fields (status, connection state, ...) are the caller's to fill.
//
// $metadata holds $lastUpdated for the section and for every property, recursively; desired
// entries also carry $lastUpdatedVersion (the desired $version of that change), as the hub
// shows them. A section never updated shows $lastUpdated "0001-01-01T00:00:00Z".
func (s *Store) ServiceView(id iothub.Identity) iothub.Twin {
	t := s.snapshot(id)
	view := iothub.Twin{DeviceID: id.DeviceID, ModuleID: id.ModuleID, ETag: etag(t.version), Version: t.version}
	if len(t.tags.doc.keys) > 0 {
		view.Tags = appendValue(nil, t.tags.doc)
	}
	view.Properties.Desired = appendSection(nil, t.desired, func(b []byte) []byte { return appendMeta(b, t.desired.doc, t.desired.stamp, true) })
	view.Properties.Reported = appendSection(nil, t.reported, func(b []byte) []byte { return appendMeta(b, t.reported.doc, t.reported.stamp, false) })
	return view
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
