package restapi_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func TestFromCode(t *testing.T) {
	cause := errors.New("dev1 is offline")
	for _, tc := range []struct {
		code       int
		status     int
		name, text string
	}{
		{404103, 404, "DeviceNotOnline", "device is not online: dev1 is offline"},
		{504101, 504, "GatewayTimeout", "timed out waiting for the device to respond: dev1 is offline"},
		{412002, 412, "PreconditionFailed", "etag does not match (If-Match): dev1 is offline"},
		{403004, 403, "DeviceMaximumQueueDepthExceeded", "the device's cloud-to-device queue is full: dev1 is offline"},
		{429001, 429, "429001", "dev1 is offline: dev1 is offline"},
		{42, 500, "42", "dev1 is offline: dev1 is offline"},
	} {
		err := restapi.FromCode(tc.code, cause)
		var e *restapi.Error
		if !errors.As(err, &e) || e.Status != tc.status || e.Code != tc.name || err.Error() != tc.text || !errors.Is(err, cause) {
			t.Errorf("FromCode(%d) = %v (%+v), want %d %s %q wrapping the cause", tc.code, err, e, tc.status, tc.name, tc.text)
		}
	}
}

// failing is a Backend whose registry fails with an internal error.
type failing struct{ restapi.Backend }

func (failing) Policy(name string) (restapi.Policy, bool) {
	return restapi.Policy{Name: name, PrimaryKey: ownerKey, SecondaryKey: ownerKey2, Rights: restapi.RightsIoTHubOwner}, name == "iothubowner"
}

func (failing) Devices(context.Context) ([]restapi.Device, error) {
	return nil, errors.New("db at /var/lib/secret.db: disk full")
}

func TestInternalErrorsAreNotLeaked(t *testing.T) {
	srv := httptest.NewServer(restapi.NewHandler(failing{}, restapi.Options{HostName: testHost, Now: func() time.Time { return testNow }}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/devices?api-version=2021-04-12", nil)
	req.Header.Set("Authorization", ownerToken())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 500 || resp.Header.Get("iothub-errorcode") != "ServerError" || strings.Contains(b.String(), "secret") {
		t.Errorf("GET /devices = %d %s", resp.StatusCode, b.String())
	}
}

// viewBackend serves a twin pre-rendered by the twin store.
type viewBackend struct{ failing }

func (viewBackend) Twin(_ context.Context, id iothub.Identity) (restapi.Twin, error) {
	return restapi.Twin{Identity: id, ETag: "AAAAAAAAAAI=", View: []byte(`{"deviceId":"dev1","etag":"AAAAAAAAAAI=","properties":{"desired":{"$metadata":{},"$version":2}}}`)}, nil
}

func TestTwinViewIsSentAsIs(t *testing.T) {
	srv := httptest.NewServer(restapi.NewHandler(viewBackend{}, restapi.Options{HostName: testHost, Now: func() time.Time { return testNow }}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/twins/dev1?api-version=2021-04-12", nil)
	req.Header.Set("Authorization", ownerToken())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || b.String() != `{"deviceId":"dev1","etag":"AAAAAAAAAAI=","properties":{"desired":{"$metadata":{},"$version":2}}}` || resp.Header.Get("ETag") != `"AAAAAAAAAAI="` {
		t.Errorf("GET twin = %d %s %v", resp.StatusCode, b.String(), resp.Header)
	}
}
