package restapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// stubKey is the iothubowner key of failingBackend.
var stubKey = []byte("the stub's iothubowner key, 32 b")

// failingBackend is a minimal restapi.Backend for the one path the hub cannot be made to
// take: its device list fails with err. Any other method panics (nil embedded interface).
type failingBackend struct {
	restapi.Backend
	err error
}

func (failingBackend) Policy(name string) (iothub.AccessPolicy, bool) {
	k := base64.StdEncoding.EncodeToString(stubKey)
	return iothub.AccessPolicy{KeyName: name, PrimaryKey: k, SecondaryKey: k, Rights: iothub.RegistryRead}, name == "iothubowner"
}

func (b failingBackend) Devices(context.Context) ([]iothub.Device, error) { return nil, b.err }

// listDevices serves GET /devices from b and returns the answer and what was logged.
func listDevices(t *testing.T, b restapi.Backend) (response, string) {
	t.Helper()
	var logs bytes.Buffer
	h := restapi.NewHandler(b, restapi.Options{HostName: testHost, Now: func() time.Time { return testNow },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	req := httptest.NewRequest("GET", "/devices"+av, nil)
	req.Header.Set("Authorization", token("iothubowner", stubKey, testNow.Add(time.Hour)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}, logs.String()
}

func TestInternalErrorsAreNotLeaked(t *testing.T) {
	t.Parallel()
	r, logs := listDevices(t, failingBackend{err: errors.New("db at /var/lib/secret.db: disk full")})
	e := wantError(t, r, 500, "ServerError")
	if e.Message != "ErrorCode:ServerError;internal error" || strings.Contains(r.body, "secret") || strings.Contains(r.body, "disk full") {
		t.Errorf("GET /devices = %d %s, want a bare ServerError", r.status, r.body)
	}
	// The operator still learns what happened.
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "disk full") {
		t.Errorf("the backend error was not logged; logs: %s", logs)
	}
}

func TestBackendErrorCodesAreKept(t *testing.T) {
	t.Parallel()
	// An *iothub.Error keeps its code and message through wrapping.
	err := fmt.Errorf("listing devices: %w", iothub.Errorf(iothub.CodeThrottlingException, "too many requests, retry in a second"))
	r, logs := listDevices(t, failingBackend{err: err})
	e := wantError(t, r, 429, "ThrottlingException")
	if e.Message != "ErrorCode:ThrottlingException;too many requests, retry in a second" {
		t.Errorf("Message = %q", e.Message)
	}
	if logs != "" {
		t.Errorf("an IoT Hub error was logged as a failure: %s", logs)
	}
	if got := iothub.ReadError(r.status, r.header, []byte(r.body)); !errors.Is(got, iothub.ErrThrottled) {
		t.Errorf("ReadError = %v, want it to match iothub.ErrThrottled", got)
	}
}

func TestRouteErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.addDevice("dev1")
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nothing", 404, "GenericNotFound"},
		{"GET", "/devices/dev1/nothing" + av, 404, "GenericNotFound"},
		{"POST", "/devices/dev1" + av, 405, "GenericMethodNotAllowed"},
		{"DELETE", "/devices" + av, 405, "GenericMethodNotAllowed"},
		{"GET", "/twins/dev1/methods" + av, 405, "GenericMethodNotAllowed"},
		{"POST", "/hubkit/telemetry", 405, "GenericMethodNotAllowed"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			r := f.owner(tc.method, tc.path, "")
			wantError(t, r, tc.status, tc.code)
			// IoT Hub's error body: exactly these two members, as JSON.
			if diff := cmp.Diff([]string{"ExceptionMessage", "Message"}, members(t, r.body)); diff != "" || r.header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("error body members (-want +got):\n%s\nContent-Type %q", diff, r.header.Get("Content-Type"))
			}
		})
	}
}
