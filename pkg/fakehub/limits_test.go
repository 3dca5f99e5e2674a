package fakehub_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hubkit/hubkit/internal/mqttraw"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Keys of 15 or 65 bytes are refused over REST with 400 ArgumentInvalid
// (they were 500s), for devices and modules.
func TestServiceBadKeyLengths(t *testing.T) {
	h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	c := newCurl(t, h)
	for _, n := range []int{15, 65} {
		key := base64.StdEncoding.EncodeToString(make([]byte, n))
		body := `{"authentication":{"symmetricKey":{"primaryKey":"` + key + `"}}}`
		for _, path := range []string{"/devices/newdev", "/devices/dev1/modules/newmod"} {
			status, hdr, out := c.do("PUT", path+av, body, "Content-Type: application/json")
			if status != 400 || hdr.Get("iothub-errorcode") != "ArgumentInvalid" || !strings.Contains(out, "primaryKey") {
				t.Errorf("PUT %s with a %d-byte key = %d %s %s, want 400 ArgumentInvalid naming primaryKey", path, n, status, hdr.Get("iothub-errorcode"), out)
			}
		}
	}
}

// A request that declares a body and sends one byte is cut off after
// Options.ServiceReadTimeout instead of holding its connection; a body over
// Options.ServiceMaxBody is refused with 413.
func TestServiceReadTimeoutAndBodyLimit(t *testing.T) {
	h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0", ServiceReadTimeout: 300 * time.Millisecond, ServiceMaxBody: 4096})
	c := newCurl(t, h)
	conn, err := tls.Dial("tcp", h.ServiceAddr(), &tls.Config{RootCAs: h.CAPool, ServerName: "localhost", MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "PUT /devices/slow" + av + " HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + c.auth + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // the bound of the test, 16× the read time-out
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the service API still holds a connection whose body never came")
	}
	status, hdr, _ := c.do("POST", "/devices/dev1/messages/devicebound"+av, strings.Repeat("x", 5000))
	if status != 413 || hdr.Get("iothub-errorcode") != "MessageTooLarge" {
		t.Errorf("a 5000-byte body = %d %s, want 413 MessageTooLarge", status, hdr.Get("iothub-errorcode"))
	}
}

// The hub holds at most Options.MaxIdentities identities (devices plus
// modules; IoT Hub: 1,000,000) and refuses the next with 413002
// TooManyDevices, in Go and over REST.
func TestIdentityLimit(t *testing.T) {
	if fakehub.DefaultMaxIdentities != 1_000_000 {
		t.Errorf("DefaultMaxIdentities = %d, want IoT Hub's 1,000,000", fakehub.DefaultMaxIdentities)
	}
	h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0", MaxIdentities: 4}) // dev1, dev1/mod1, dev2, dev10
	if n := h.Registry().Len(); n != 4 {
		t.Fatalf("Len() = %d, want 4", n)
	}
	_, err := h.AddDevice("dev3")
	var e *iothub.Error
	if !errors.As(err, &e) || e.Code != iothub.CodeTooManyDevices {
		t.Fatalf("AddDevice(dev3) = %v, want 413002 TooManyDevices", err)
	}
	c := newCurl(t, h)
	if status, hdr, out := c.do("PUT", "/devices/dev1/modules/mod2"+av, `{}`, "Content-Type: application/json"); status != 413 || hdr.Get("iothub-errorcode") != "TooManyDevices" {
		t.Errorf("PUT a fifth identity = %d %s %s, want 413 TooManyDevices", status, hdr.Get("iothub-errorcode"), out)
	}
	if err := h.Registry().Delete(dev1, ""); err != nil { // the device and its module
		t.Fatal(err)
	}
	if _, err := h.AddDevice("dev3"); err != nil {
		t.Errorf("AddDevice after a removal = %v", err)
	}
}

// A device has at most 50 modules (IoT Hub's limit,
// Options.MaxModulesPerDevice); the 51st is refused with 413003
// TooManyModulesOnDevice in Go and over REST, an update of a module already
// there is not, and a removal makes room.
func TestModuleLimit(t *testing.T) {
	if fakehub.DefaultMaxModulesPerDevice != 50 {
		t.Errorf("DefaultMaxModulesPerDevice = %d, want IoT Hub's 50", fakehub.DefaultMaxModulesPerDevice)
	}
	h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	reg := h.Registry()
	for i := range 50 {
		if _, err := reg.Add(iothub.Device{DeviceID: "dev2", ModuleID: fmt.Sprintf("m%02d", i)}); err != nil {
			t.Fatalf("module %d of 50: %v", i+1, err)
		}
	}
	_, err := reg.Add(iothub.Device{DeviceID: "dev2", ModuleID: "m50"})
	var e *iothub.Error
	if !errors.As(err, &e) || e.Code != iothub.CodeTooManyModulesOnDevice {
		t.Fatalf("the 51st module = %v, want 413003 TooManyModulesOnDevice", err)
	}
	c := newCurl(t, h)
	if status, hdr, out := c.do("PUT", "/devices/dev2/modules/m50"+av, `{}`, "Content-Type: application/json"); status != 413 || hdr.Get("iothub-errorcode") != "TooManyModulesOnDevice" {
		t.Errorf("PUT a 51st module = %d %s %s, want 413 TooManyModulesOnDevice", status, hdr.Get("iothub-errorcode"), out)
	}
	if status, _, out := c.do("PUT", "/devices/dev2/modules/m00"+av, `{"moduleId":"m00","deviceId":"dev2"}`, "Content-Type: application/json", "If-Match: *"); status != 200 {
		t.Errorf("updating module 1 of 50 = %d %s, want 200", status, out)
	}
	if _, err := reg.Add(iothub.Device{DeviceID: "dev1", ModuleID: "other"}); err != nil {
		t.Errorf("a module of another device = %v, want it added", err)
	}
	if err := reg.Delete(iothub.Identity{DeviceID: "dev2", ModuleID: "m00"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Add(iothub.Device{DeviceID: "dev2", ModuleID: "m50"}); err != nil {
		t.Errorf("a module after a removal = %v", err)
	}
	reg.SetMaxModulesPerDevice(-1)
	if _, err := reg.Add(iothub.Device{DeviceID: "dev2", ModuleID: "m51"}); err != nil {
		t.Errorf("a 51st module without a limit = %v", err)
	}
}

// The classic endpoints negotiate TLS 1.2 at most, as IoT Hub's
// {hub}.azure-devices.net names do; Options.ClassicTLSMaxVersion offers 1.3.
func TestClassicTLSVersion(t *testing.T) {
	dial := func(addr string, cfg *tls.Config) (uint16, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.(*tls.Conn).ConnectionState().Version, nil
	}
	for _, tt := range []struct {
		name string
		max  uint16
		want uint16
	}{{"default", 0, tls.VersionTLS12}, {"tls13-option", tls.VersionTLS13, tls.VersionTLS13}} {
		t.Run(tt.name, func(t *testing.T) {
			h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0", ClassicTLSMaxVersion: tt.max})
			for _, addr := range []string{h.Addr(), h.ServiceAddr()} {
				v, err := dial(addr, h.ClientTLS())
				if err != nil || v != tt.want {
					t.Errorf("%s: TLS version %x, %v; want %x", addr, v, err, tt.want)
				}
				only13 := h.ClientTLS()
				only13.MinVersion = tls.VersionTLS13
				_, err = dial(addr, only13)
				if (err == nil) != (tt.want == tls.VersionTLS13) {
					t.Errorf("%s: a TLS 1.3-only client: %v", addr, err)
				}
			}
		})
	}
}

// An sr with "host:port" is accepted over MQTT and over REST alike.
func TestPortInResourceAgrees(t *testing.T) {
	h := startHub(t, fakehub.Options{ServiceAddr: "127.0.0.1:0"})
	ack, _ := rawConnect(t, h, mqttraw.ConnectPacket{ClientID: "dev1", UserName: mqttraw.String(userName("localhost", dev1)),
		Password: mqttraw.String(deviceToken("localhost:8883", dev1, keyDev1A)), CleanSession: true, KeepAlive: 60})
	if ack.ReturnCode != 0 {
		t.Errorf("MQTT with sr=localhost:8883/devices/dev1: CONNACK %d, want 0", ack.ReturnCode)
	}
	c := newCurl(t, h)
	p, _ := h.Registry().Policy("iothubowner")
	key, _ := sas.DecodeKey(p.PrimaryKey)
	c.auth = sas.Sign(sas.EncodeResource("localhost:8443"), "iothubowner", key, time.Now().Add(time.Hour)).String()
	if status, _, out := c.do("GET", "/devices"+av, ""); status != 200 {
		t.Errorf("REST with sr=localhost:8443: %d %s, want 200", status, out)
	}
	c.auth = sas.Sign(sas.EncodeResource("otherhost:8443"), "iothubowner", key, time.Now().Add(time.Hour)).String()
	if status, _, _ := c.do("GET", "/devices"+av, ""); status != 401 {
		t.Errorf("REST with sr=otherhost:8443: %d, want 401", status)
	}
}
