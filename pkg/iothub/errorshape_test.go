package iothub_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// nodeParseErrorBody is what the Node service SDK (azure-iot-http-base Http.parseErrorBody,
// used by azure-iothub's RestApiClient.translateError) reads from an error body: the code
// name between "ErrorCode:" and the first ';' of Message, and the text after it. It yields
// nothing for any other form; translateError then maps by HTTP status only (a 404 becomes a
// plain "Not found").
func nodeParseErrorBody(body string) (code, message string, ok bool) {
	var b struct{ Message *string }
	if json.Unmarshal([]byte(body), &b) != nil || b.Message == nil {
		return "", "", false
	}
	parts := strings.Split(*b.Message, ";")
	if len(parts) < 2 {
		return "", "", false
	}
	first := strings.Split(parts[0], ":")
	if len(first) < 2 || first[1] == "" || parts[1] == "" {
		return "", "", false
	}
	return first[1], parts[1], true
}

// dotnetErrorCode is what the .NET service SDK (Microsoft.Azure.Devices ExceptionHandlingHelper.
// GetExceptionCodeAsync) reads: Message as a JSON object of strings with an errorCode, else
// Message split at ';' where the first field holding "errorCode" gives, after ':', a six-digit
// number or a code name; the result counts only when the iothub-errorcode header names the
// same code (else Unknown, 0 here).
func dotnetErrorCode(header http.Header, body string) int {
	var b struct{ Message string }
	if json.Unmarshal([]byte(body), &b) != nil {
		return 0
	}
	code := 0
	if fields, ok := newtonsoftStringMap(b.Message); ok {
		code, _ = strconv.Atoi(fields["errorCode"])
	} else {
		// The SDK looks at the first ';'-separated field only.
		if f := strings.Split(b.Message, ";")[0]; strings.Contains(strings.ToLower(f), "errorcode") && strings.Contains(f, ":") {
			v := strings.Split(f, ":")[1]
			if len(v) >= 6 {
				if n, err := strconv.Atoi(v[:6]); err == nil {
					v = strconv.Itoa(n)
				}
			}
			if n, err := strconv.Atoi(v); err == nil {
				code = n
			} else if c, ok := iothub.CodeByName(v); ok {
				code = int(c)
			}
		}
	}
	if c, ok := iothub.CodeByName(header.Get(iothub.HeaderErrorCode)); ok && int(c) == code {
		return code
	}
	return 0
}

// newtonsoftStringMap decodes s as Newtonsoft.Json decodes a Dictionary<string, string>:
// numbers and booleans become their text, an object or array value fails.
func newtonsoftStringMap(s string) (map[string]string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil, false
	}
	out := map[string]string{}
	for k, raw := range m {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return nil, false
		}
		switch v := v.(type) {
		case string:
			out[k] = v
		case float64, bool:
			out[k] = string(raw)
		case nil:
		default:
			return nil, false
		}
	}
	return out, true
}

// TestErrorShapes pins the two forms IoT Hub answers errors in (docs/iothub-behavior.md
// §13.3) against Microsoft's own bodies, and checks that hubkit's answers read the same to
// ReadError, to the Node service SDK and to the .NET one.
func TestErrorShapes(t *testing.T) {
	when := time.Date(2030, 1, 2, 3, 4, 5, 600000000, time.UTC)
	for _, tc := range []struct {
		vector string
		code   iothub.ErrorCode
		shape  iothub.ErrorShape
		msg    string
	}{
		{"error_registry_devicenotfound.json", iothub.CodeDeviceNotFound, iothub.ShapeNamed, "E2E_MessageReceiveE2EPoolAmqpTests__3_Sasl_f16d18b2-97dc-4ea5-86f1-a3405ee98939"},
		{"error_method_devicenotonline.json", iothub.CodeDeviceNotOnline, iothub.ShapeJSON, "The operation failed because the requested device isn't online or hasn't registered the direct method callback."},
	} {
		t.Run(tc.vector, func(t *testing.T) {
			if tc.code.Shape() != tc.shape {
				t.Fatalf("%v.Shape() = %v, want %v", tc.code, tc.code.Shape(), tc.shape)
			}
			vector := strings.TrimSpace(string(readVector(t, tc.vector)))
			hdr := http.Header{}
			hdr.Set(iothub.HeaderErrorCode, tc.code.Name())
			if e := iothub.ReadError(tc.code.HTTPStatus(), hdr, []byte(vector)); e.Code != tc.code || e.Message != tc.msg || e.TrackingID == "" {
				t.Errorf("ReadError(vector) = %+v", e)
			}
			if got := dotnetErrorCode(hdr, vector); got != int(tc.code) {
				t.Errorf(".NET reads the vector as %d, want %d", got, tc.code)
			}

			// hubkit's answer: the same form, read the same way.
			rec := httptest.NewRecorder()
			iothub.WriteError(rec, iothub.Errorf(tc.code, "device %q: nothing", "dev1"), "0123abcd", when)
			body := rec.Body.String()
			if rec.Code != tc.code.HTTPStatus() || rec.Header().Get(iothub.HeaderErrorCode) != tc.code.Name() {
				t.Errorf("WriteError: status %d, %s %q", rec.Code, iothub.HeaderErrorCode, rec.Header().Get(iothub.HeaderErrorCode))
			}
			if got, want := shapeOf(t, body), shapeOf(t, vector); !slices.Equal(got, want) {
				t.Errorf("hubkit's body has the members %v, Microsoft's %v\nhubkit: %s", got, want, body)
			}
			if got := dotnetErrorCode(rec.Header(), body); got != int(tc.code) {
				t.Errorf(".NET reads hubkit's body as %d, want %d: %s", got, tc.code, body)
			}
			e := iothub.ReadError(rec.Code, rec.Header(), rec.Body.Bytes())
			if e.Code != tc.code || e.Message != `device "dev1": nothing` || e.TrackingID != "0123abcd" {
				t.Errorf("ReadError(hubkit) = %+v", e)
			}
			nodeCode, nodeMsg, ok := nodeParseErrorBody(body)
			vCode, _, vOK := nodeParseErrorBody(vector)
			switch tc.shape {
			case iothub.ShapeNamed:
				if !ok || nodeCode != tc.code.Name() || nodeMsg != `device "dev1": nothing` || !vOK || vCode != tc.code.Name() {
					t.Errorf("Node reads hubkit's body as %q %q %v (Microsoft's: %q %v)", nodeCode, nodeMsg, ok, vCode, vOK)
				}
			case iothub.ShapeJSON: // Node finds no code in this form, from the real hub either
				if ok || vOK {
					t.Errorf("Node reads a code from the JSON form: %q / %q", nodeCode, vCode)
				}
				var inner iothub.MethodErrorMessage
				var outer iothub.ErrorBody
				if json.Unmarshal([]byte(body), &outer) != nil || json.Unmarshal([]byte(outer.Message), &inner) != nil ||
					inner.ErrorCode != tc.code || !inner.TimestampUTC.Equal(when) || outer.ExceptionMessage != "" {
					t.Errorf("inner message %+v from %s", inner, body)
				}
			}
		})
	}
	for _, c := range []iothub.ErrorCode{iothub.CodeGatewayTimeout, iothub.CodeDeviceConnectionClosedRemotely} {
		if c.Shape() != iothub.ShapeJSON {
			t.Errorf("%v is a direct-method code: want ShapeJSON", c)
		}
	}
	for _, c := range []iothub.ErrorCode{iothub.CodePreconditionFailed, iothub.CodeIotHubUnauthorizedAccess, iothub.CodeDeviceMaximumQueueDepthExceeded, iothub.CodeArgumentInvalid} {
		if c.Shape() != iothub.ShapeNamed {
			t.Errorf("%v: want ShapeNamed", c)
		}
	}
}

// shapeOf lists a body's members, and those of a JSON object escaped in its Message, with the
// kind of each value: "Message:string", "Message.errorCode:number", ...
func shapeOf(t *testing.T, body string) []string {
	t.Helper()
	var top map[string]any
	if err := json.Unmarshal([]byte(body), &top); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var out []string
	add := func(prefix string, m map[string]any) {
		for k, v := range m {
			kind := "string"
			switch v.(type) {
			case float64:
				kind = "number"
			case map[string]any:
				kind = "object"
			}
			out = append(out, prefix+k+":"+kind)
		}
	}
	add("", top)
	if s, ok := top["Message"].(string); ok {
		var inner map[string]any
		if json.Unmarshal([]byte(s), &inner) == nil {
			add("Message.", inner)
		}
	}
	slices.Sort(out)
	return out
}
