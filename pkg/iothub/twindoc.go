package iothub

import (
	"bytes"
	"encoding/json"
	"time"
)

// Twin is a device or module twin in the service's view, as IoT Hub's REST API renders it
// (GET /twins/{id}, /twins/{id}/modules/{mid}): the twin's own fields (etag, version, tags,
// properties.desired and .reported, each with its $metadata and $version) and the registry
// fields of its identity. Tags is a JSON object, or nil when the twin has none.
type Twin struct {
	DeviceID                  string          `json:"deviceId"`
	ModuleID                  string          `json:"moduleId,omitempty"`
	ETag                      string          `json:"etag"`
	DeviceETag                string          `json:"deviceEtag,omitempty"`
	Status                    DeviceStatus    `json:"status"`
	StatusReason              string          `json:"statusReason,omitempty"`
	StatusUpdateTime          time.Time       `json:"statusUpdateTime"`
	ConnectionState           ConnectionState `json:"connectionState"`
	LastActivityTime          time.Time       `json:"lastActivityTime"`
	CloudToDeviceMessageCount int             `json:"cloudToDeviceMessageCount"`
	AuthenticationType        AuthType        `json:"authenticationType"`
	X509Thumbprint            X509Thumbprint  `json:"x509Thumbprint"`
	ModelID                   string          `json:"modelId"`
	Version                   int64           `json:"version"`
	Tags                      json.RawMessage `json:"tags,omitempty"`
	Properties                TwinProperties  `json:"properties"`
	Capabilities              *Capabilities   `json:"capabilities,omitempty"` // devices only
}

// TwinProperties holds the desired and reported sections of a twin. In the service's view
// each carries "$metadata" and "$version"; in the device's view (TwinDocument) no metadata.
type TwinProperties struct {
	Desired  json.RawMessage `json:"desired"`
	Reported json.RawMessage `json:"reported"`
}

// Identity returns the identity the twin belongs to.
func (t Twin) Identity() Identity { return Identity{DeviceID: t.DeviceID, ModuleID: t.ModuleID} }

// DesiredVersion returns the "$version" of the desired section (0 when absent).
func (t Twin) DesiredVersion() int64 { return SectionVersion(t.Properties.Desired) }

// ReportedVersion returns the "$version" of the reported section (0 when absent).
func (t Twin) ReportedVersion() int64 { return SectionVersion(t.Properties.Reported) }

// MarshalJSON writes the times as the hub does (UTC; the zero time as 0001-01-01T00:00:00Z).
func (t Twin) MarshalJSON() ([]byte, error) {
	type plain Twin
	return json.Marshal(struct {
		plain
		StatusUpdateTime *jsonTime `json:"statusUpdateTime"`
		LastActivityTime *jsonTime `json:"lastActivityTime"`
	}{plain(t), timeOf(t.StatusUpdateTime), timeOf(t.LastActivityTime)})
}

// UnmarshalJSON reads times with or without a zone, and null.
func (t *Twin) UnmarshalJSON(b []byte) error {
	type plain Twin
	in := struct {
		*plain
		StatusReason     *string   `json:"statusReason"`
		StatusUpdateTime *jsonTime `json:"statusUpdateTime"`
		LastActivityTime *jsonTime `json:"lastActivityTime"`
	}{plain: (*plain)(t)}
	*t = Twin{}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if in.StatusReason != nil {
		t.StatusReason = *in.StatusReason
	}
	t.StatusUpdateTime, t.LastActivityTime = in.StatusUpdateTime.get(), in.LastActivityTime.get()
	return nil
}

// TwinDocument is the twin as the device sees it: the body of the answer to
// $iothub/twin/GET, {"desired":{…,"$version":n},"reported":{…,"$version":m}}, without
// $metadata.
type TwinDocument struct {
	Desired  json.RawMessage `json:"desired"`
	Reported json.RawMessage `json:"reported"`
}

// DesiredVersion returns the desired "$version" (0 when absent).
func (d TwinDocument) DesiredVersion() int64 { return SectionVersion(d.Desired) }

// ReportedVersion returns the reported "$version" (0 when absent).
func (d TwinDocument) ReportedVersion() int64 { return SectionVersion(d.Reported) }

// SectionVersion returns the "$version" member of a twin section (or of a desired-properties
// notification), or 0 when it has none or is not a JSON object.
func SectionVersion(section json.RawMessage) int64 {
	var v struct {
		Version int64 `json:"$version"`
	}
	if len(bytes.TrimSpace(section)) == 0 || json.Unmarshal(section, &v) != nil {
		return 0
	}
	return v.Version
}

// TwinPatch is the body of the service's PATCH and PUT /twins/{id}: the twin, of which only
// tags and properties.desired are taken (the SDKs send the whole twin). Fields left nil are
// not changed; in a PATCH they are JSON merge patches (null deletes a key).
type TwinPatch struct {
	Tags       json.RawMessage      `json:"tags,omitempty"`
	Properties *TwinPatchProperties `json:"properties,omitempty"`
}

// TwinPatchProperties is the properties member of a TwinPatch. Reported is read-only for the
// service: a patch that sets it is refused.
type TwinPatchProperties struct {
	Desired  json.RawMessage `json:"desired,omitempty"`
	Reported json.RawMessage `json:"reported,omitempty"`
}

// NewTwinPatch returns the patch body for tags and desired (either may be nil).
func NewTwinPatch(tags, desired json.RawMessage) TwinPatch {
	p := TwinPatch{Tags: tags}
	if desired != nil {
		p.Properties = &TwinPatchProperties{Desired: desired}
	}
	return p
}

// TwinUpdate is a service-side change to a twin's tags and desired properties. A nil field
// is left alone. Tags and Desired are JSON merge patches (null deletes a property), or, with
// Replace, the new sections (PUT /twins/{id}). IfMatch is "" or "*" (unconditional) or the
// twin etag the caller read (ErrPreconditionFailed when the twin changed since).
type TwinUpdate struct {
	Tags    json.RawMessage
	Desired json.RawMessage
	Replace bool
	IfMatch string
}
