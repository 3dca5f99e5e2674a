package dashboard

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// maxShown is how much of a payload a page shows.
const maxShown = 4096

var funcs = template.FuncMap{
	"when":             when,
	"iso":              func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"deviceURL":        deviceURL,
	"actionURL":        actionURL,
	"identity":         func(d iothub.Device) iothub.Identity { return d.Identity() },
	"payloadText":      payloadText,
	"payloadJSON":      func(b []byte) string { return prettyJSON(b) },
	"payloadHex":       payloadHex,
	"payloadKind":      payloadKind,
	"prettyJSON":       func(b json.RawMessage) string { return prettyJSON(b) },
	"props":            props,
	"section":          twinSection,
	"sysName":          sysName,
	"connString":       connString,
	"hasPrefix":        strings.HasPrefix,
	"finished":         func(s iothub.C2DState) bool { return s.Finished() },
	"identityOfDevice": func(id iothub.Identity) iothub.Identity { return iothub.Identity{DeviceID: id.DeviceID} },
	"feedbackIdentity": func(f iothub.C2DFeedback) iothub.Identity {
		return iothub.Identity{DeviceID: f.DeviceID, ModuleID: f.ModuleID}
	},
	"deref":     func(d *iothub.Device) iothub.Device { return *d },
	"list":      func(xs ...string) []string { return xs },
	"teleAll":   func(evs []iothub.Event) teleRowsData { return teleRowsData{Events: evs, All: true} },
	"teleOne":   func(evs []iothub.Event) teleRowsData { return teleRowsData{Events: evs} },
	"dpsTabURL": dpsTabURL,
	"devID":     func(id string) iothub.Identity { return iothub.Identity{DeviceID: id} },
	"groupOf":   groupOf,
	"rate": func(f float64) string {
		return strconv.FormatFloat(f, 'f', -1, 64)
	},
	"verdict":       verdictText,
	"gradeDone":     gradeDone,
	"gradeURL":      gradeURL,
	"gradeStartURL": gradeStartURL,
	"gradeIdentity": func(r iothub.GradeReport) iothub.Identity { return r.Identity() },
	"formValue": func(f map[string][]string, k, def string) string {
		if v, ok := f[k]; ok && len(v) > 0 {
			return v[0]
		}
		return def
	},
}

// when formats a time for reading ("-" when zero), in UTC.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func clip(b []byte) []byte {
	if len(b) > maxShown {
		return b[:maxShown]
	}
	return b
}

// payloadKind names what a payload is: json, text or binary.
func payloadKind(b []byte) string {
	switch {
	case len(b) > 0 && json.Valid(b):
		return "json"
	case utf8.Valid(b):
		return "text"
	}
	return "binary"
}

// payloadText is the payload as text, invalid UTF-8 replaced.
func payloadText(b []byte) string {
	s := strings.ToValidUTF8(string(clip(b)), "\uFFFD")
	if len(b) > maxShown {
		s += "…"
	}
	return s
}

// prettyJSON indents JSON; other bytes come back as text.
func prettyJSON(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var out bytes.Buffer
	if len(b) <= 64<<10 && json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	return payloadText(b)
}

// twinSection shows a twin's desired or reported section without its
// $metadata (the timestamps of every property), indented.
func twinSection(b json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return prettyJSON(b)
	}
	delete(m, "$metadata")
	out, err := json.Marshal(m)
	if err != nil {
		return prettyJSON(b)
	}
	return prettyJSON(out)
}

// payloadHex is a hex dump: offset, 16 bytes, their printable characters.
func payloadHex(b []byte) string {
	s := hex.Dump(clip(b))
	if len(b) > maxShown {
		s += "…\n"
	}
	return s
}

// prop is one decoded property.
type prop struct{ Name, Key, Value string }

// props returns a property map sorted by key, with the readable names of
// system properties.
func props(m map[string]string) []prop {
	out := make([]prop, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, prop{Name: sysName(k), Key: k, Value: m[k]})
	}
	return out
}

var sysNames = map[string]string{
	"$.mid": "message-id", "$.cid": "correlation-id", "$.uid": "user-id", "$.to": "to",
	"$.ct": "content-type", "$.ce": "content-encoding", "$.exp": "expiry", "$.ctime": "creation-time",
	"$.ifid": "interface-id", "$.sub": "component", "iothub-ack": "ack",
}

// sysName is the readable name of a system property key ("$.ct":
// "content-type"), or the key itself.
func sysName(k string) string {
	if n, ok := sysNames[k]; ok {
		return n
	}
	return k
}

// connString is the connection string of an identity with its primary key.
func connString(host string, d iothub.Device) string {
	return sas.ConnectionString{HostName: host, DeviceID: d.DeviceID, ModuleID: d.ModuleID, SharedAccessKey: d.Authentication.SymmetricKey.PrimaryKey}.String()
}
