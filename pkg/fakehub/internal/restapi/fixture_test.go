package restapi_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/hubkit/hubkit/internal/testutil"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/fakehub/fakehubtest"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// The tests run the service API of a real in-process hub (fakehubtest, with a service
// address), over HTTPS, and play the device side with raw MQTT connections.

const (
	testHost = "localhost"
	av       = "?api-version=2021-04-12"
)

// testNow is the hub's time unless a test moves its clock.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// lockedRand is a seeded random source that the hub's goroutines may share.
type lockedRand struct {
	mu sync.Mutex
	r  *mrand.ChaCha8
}

func newRand(seed byte) *lockedRand { return &lockedRand{r: mrand.NewChaCha8([32]byte{seed})} }

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

type fixture struct {
	t     testing.TB
	hub   *fakehubtest.Hub
	clock *testutil.Clock
	httpc *http.Client
}

// newFixture starts a hub serving the service API on 127.0.0.1, with a clock standing at
// testNow and seeded randomness.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	clk := testutil.NewClock(testNow)
	hub := fakehubtest.Start(t, fakehub.Options{HostName: testHost, ServiceAddr: "127.0.0.1:0", Now: clk.Now, Rand: newRand(1)})
	tr := &http.Transport{TLSClientConfig: hub.ClientTLS()}
	t.Cleanup(tr.CloseIdleConnections)
	return &fixture{t: t, hub: hub, clock: clk, httpc: &http.Client{Transport: tr}}
}

// policyKey returns the primary or secondary key of one of the hub's policies.
func (f *fixture) policyKey(name string, secondary bool) []byte {
	f.t.Helper()
	p, ok := f.hub.Registry().Policy(name)
	if !ok {
		f.t.Fatalf("no policy %q", name)
	}
	k := p.PrimaryKey
	if secondary {
		k = p.SecondaryKey
	}
	key, err := sas.DecodeKey(k)
	if err != nil {
		f.t.Fatalf("policy %q: %v", name, err)
	}
	return key
}

// token mints a token the way `sastool gen --uri HOST --key KEY --policy P` does: sr = the
// host, skn = the policy.
func token(policy string, key []byte, expiry time.Time) string {
	return sas.Sign(sas.EncodeResource(sas.HubResource(testHost)), policy, key, expiry).String()
}

func (f *fixture) ownerToken() string {
	return token("iothubowner", f.policyKey("iothubowner", false), testNow.Add(time.Hour))
}

type response struct {
	status int
	header http.Header
	body   string
}

// try sends a request shaped like curl's: the exact headers given, plus curl's own
// User-Agent and Accept. It may run outside the test's goroutine.
func (f *fixture) try(ctx context.Context, method, path, body string, headers ...string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, f.hub.ServiceURL()+path, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("User-Agent", "curl/8.5.0")
	req.Header.Set("Accept", "*/*")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := f.httpc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{resp.StatusCode, resp.Header, string(b)}, nil
}

func (f *fixture) do(method, path, body string, headers ...string) response {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := f.try(ctx, method, path, body, headers...)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// owner sends with an iothubowner token.
func (f *fixture) owner(method, path, body string, headers ...string) response {
	f.t.Helper()
	return f.do(method, path, body, append([]string{"Authorization", f.ownerToken()}, headers...)...)
}

// async sends with an iothubowner token from another goroutine (for calls that wait for the
// device) and returns where the answer will arrive.
func (f *fixture) async(method, path, body string) <-chan response {
	f.t.Helper()
	auth := f.ownerToken()
	ch := make(chan response, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := f.try(ctx, method, path, body, "Authorization", auth)
		if err != nil {
			r = response{status: -1, body: err.Error()}
		}
		ch <- r
	}()
	return ch
}

// addDevice creates a device (or module: "dev/mod") through the service API.
func (f *fixture) addDevice(clientID string) iothub.Device {
	f.t.Helper()
	dev, mod, _ := strings.Cut(clientID, "/")
	path := "/devices/" + dev
	if mod != "" {
		path += "/modules/" + mod
	}
	r := f.owner("PUT", path+av, `{}`, "Content-Type", "application/json")
	if r.status != 200 {
		f.t.Fatalf("PUT %s = %d %s", path, r.status, r.body)
	}
	return decode[iothub.Device](f.t, r.body)
}

func decode[T any](t testing.TB, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return v
}

// wantError checks an IoT Hub error answer: the status, the iothub-errorcode header and
// the body {"Message":"ErrorCode:{name};...","ExceptionMessage":"Tracking ID:...-G:0-TimeStamp:..."}.
func wantError(t testing.TB, r response, status int, code string) iothub.ErrorBody {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	e := decode[iothub.ErrorBody](t, r.body)
	c, ok := iothub.CodeByName(code)
	if !ok {
		t.Fatalf("no code named %q", code)
	}
	if c.Shape() == iothub.ShapeJSON { // direct methods: {"errorCode":…} escaped into Message
		in := decode[iothub.MethodErrorMessage](t, e.Message)
		if _, err := hex.DecodeString(in.TrackingID); err != nil || len(in.TrackingID) != 32 || in.ErrorCode != c ||
			!in.TimestampUTC.Equal(testNow) || e.ExceptionMessage != "" {
			t.Errorf("Message = %q (ExceptionMessage %q), want errorCode %d, a 32-hex-digit trackingId, timestampUtc %s", e.Message, e.ExceptionMessage, c, testNow.Format(time.RFC3339))
		}
	} else {
		if !strings.HasPrefix(e.Message, "ErrorCode:"+code+";") {
			t.Errorf("Message = %q, want prefix ErrorCode:%s;", e.Message, code)
		}
		rest, _ := strings.CutPrefix(e.ExceptionMessage, "Tracking ID:")
		id, stamp, _ := strings.Cut(rest, "-G:0-")
		if _, err := hex.DecodeString(id); err != nil || len(id) != 32 || stamp != "TimeStamp:01/02/2030 03:04:05" {
			t.Errorf("ExceptionMessage = %q, want Tracking ID:{32 hex digits}-G:0-TimeStamp:01/02/2030 03:04:05", e.ExceptionMessage)
		}
	}
	if got := r.header.Get(iothub.HeaderErrorCode); got != code {
		t.Errorf("%s = %q, want %q", iothub.HeaderErrorCode, got, code)
	}
	return e
}

// device is a raw MQTT connection playing a device or module: the test reads every packet
// the hub sends it.
type device struct {
	t      testing.TB
	id     iothub.Identity
	c      *mqttraw.Conn
	nextID uint16
}

// connectPacket is a valid CONNECT for id signed with key (base64), by a token valid for an
// hour of the hub's clock.
func connectPacket(id iothub.Identity, key string) mqttraw.ConnectPacket {
	k, _ := sas.DecodeKey(key)
	res := sas.DeviceResource(testHost, id.DeviceID)
	if id.IsModule() {
		res = sas.ModuleResource(testHost, id.DeviceID, id.ModuleID)
	}
	return mqttraw.ConnectPacket{
		ClientID:     id.ClientID(),
		UserName:     mqttraw.String(testHost + "/" + id.ClientID() + "/?api-version=" + iothub.DefaultAPIVersion),
		Password:     mqttraw.String(sas.Sign(sas.EncodeResource(res), "", k, testNow.Add(time.Hour)).String()),
		CleanSession: true,
		KeepAlive:    60,
	}
}

// dial sends p and returns the CONNACK and the open connection (closed at the end of the test).
func (f *fixture) dial(p mqttraw.ConnectPacket) (mqttraw.Connack, *mqttraw.Conn) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, c, err := mqttraw.ConnectAndWait(ctx, f.hub.Addr(), f.hub.ClientTLS(), p)
	if err != nil {
		f.t.Fatalf("CONNECT %s: %v", p.ClientID, err)
	}
	f.t.Cleanup(func() { _ = c.Close() })
	return ack, c
}

// connect connects an identity of the registry with its primary key.
func (f *fixture) connect(id iothub.Identity) *device {
	f.t.Helper()
	d, ok := f.hub.Registry().Get(id)
	if !ok {
		f.t.Fatalf("%s is not in the registry", id)
	}
	ack, c := f.dial(connectPacket(id, d.Authentication.SymmetricKey.PrimaryKey))
	if ack.ReturnCode != mqttraw.ConnackAccepted {
		f.t.Fatalf("CONNACK %d for %s; rejections %+v", ack.ReturnCode, id, f.hub.Rejections())
	}
	return &device{t: f.t, id: id, c: c}
}

// next returns the next packet the hub sent.
func (d *device) next() mqttraw.Packet {
	d.t.Helper()
	p, err := d.c.ReadPacket(5 * time.Second)
	if err != nil {
		d.t.Fatalf("%s: %v", d.id, err)
	}
	return p
}

func (d *device) packetID() uint16 {
	d.nextID++
	return d.nextID
}

// subscribe subscribes and waits for the SUBACK granting it.
func (d *device) subscribe(filter string, qos byte) {
	d.t.Helper()
	id := d.packetID()
	if err := d.c.Subscribe(id, mqttraw.Subscription{Filter: filter, QoS: qos}); err != nil {
		d.t.Fatal(err)
	}
	p := d.next()
	if p.Type != mqttraw.TypeSuback || p.Suback.PacketID != id || len(p.Suback.Codes) != 1 || p.Suback.Codes[0] > 2 {
		d.t.Fatalf("%s: SUBSCRIBE %s: got %v, want SUBACK %d granted", d.id, filter, p, id)
	}
}

// publish publishes at QoS 1 and waits for the PUBACK.
func (d *device) publish(topic string, payload []byte) {
	d.t.Helper()
	id := d.packetID()
	if err := d.c.Publish(mqttraw.PublishPacket{Topic: topic, Payload: payload, QoS: 1, PacketID: id}); err != nil {
		d.t.Fatal(err)
	}
	if p := d.next(); p.Type != mqttraw.TypePuback || p.Puback.PacketID != id {
		d.t.Fatalf("%s: PUBLISH %s: got %v, want PUBACK %d", d.id, topic, p, id)
	}
}

// nextPublish returns the next PUBLISH from the hub.
func (d *device) nextPublish() mqttraw.PublishPacket {
	d.t.Helper()
	p := d.next()
	if p.Type != mqttraw.TypePublish {
		d.t.Fatalf("%s: got %v, want PUBLISH", d.id, p)
	}
	return p.Publish
}

// methodRequest reads the next direct-method request and returns its name, $rid and payload.
func (d *device) methodRequest() (name, rid string, payload []byte) {
	d.t.Helper()
	p := d.nextPublish()
	name, rid, err := iothub.ParseMethodRequestTopic(p.Topic)
	if err != nil {
		d.t.Fatalf("%s: PUBLISH %s is not a method request: %v", d.id, p.Topic, err)
	}
	return name, rid, p.Payload
}

// answer answers a direct-method request.
func (d *device) answer(rid string, status int, payload string) {
	d.t.Helper()
	if err := d.c.Publish(mqttraw.PublishPacket{Topic: iothub.MethodResponseTopic(status, rid), Payload: []byte(payload)}); err != nil {
		d.t.Fatal(err)
	}
}

// sendTelemetry publishes a telemetry message and waits until the hub has captured it.
func (f *fixture) sendTelemetry(d *device, props iothub.Properties, payload []byte) {
	f.t.Helper()
	n := len(f.hub.TelemetrySince(1).All())
	d.publish(iothub.TelemetryTopic(d.id, props), payload)
	testutil.Eventually(f.t, fmt.Sprintf("telemetry message %d captured", n+1), func() bool { return len(f.hub.TelemetrySince(1).All()) > n })
}

// jsonEqual compares two JSON documents as values (member order does not matter).
func jsonEqual(t testing.TB, what, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Errorf("%s: %v in %s", what, err, got)
		return
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: the expected JSON: %v", what, err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s (-want +got):\n%s\ngot %s", what, diff, got)
	}
}

// members returns the member names of a JSON object, sorted.
func members(t testing.TB, obj string) []string {
	t.Helper()
	return slices.Sorted(maps.Keys(decode[map[string]json.RawMessage](t, obj)))
}

// generationID is the registry's generation ID of a device (feedback records carry it).
func (f *fixture) generationID(deviceID string) string {
	f.t.Helper()
	d, ok := f.hub.Registry().Get(iothub.Identity{DeviceID: deviceID})
	if !ok {
		f.t.Fatalf("no device %s", deviceID)
	}
	return d.GenerationID
}
