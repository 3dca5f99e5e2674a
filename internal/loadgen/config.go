package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Config describes a load run. Run validates it and fills in the defaults.
type Config struct {
	// Addr is the address dialled, host:port.
	Addr string
	// TLS is the client TLS configuration; nil means plain TCP. Its
	// ServerName should be set (see CachedVerification for a cheaper
	// certificate check).
	TLS *tls.Config
	// HostName is the hub host name written in user names.
	HostName string
	// Dial, when set, opens the connection instead of TCP to Addr (then TLS
	// with the TLS configuration, if any): the seam for other transports
	// (MQTT over WebSocket) and for dialling from a given address. A client
	// certificate (X.509 devices) goes in TLS.Certificates, with an empty
	// Credential.Password.
	Dial func(ctx context.Context, addr string) (net.Conn, error)

	// First and Count select devices [First, First+Count) (after sharding).
	First, Count int
	// Credential returns the identity and password of device i (First <=
	// i < First+Count). It is called when the device connects, from several
	// goroutines at once.
	Credential func(i int) (Credential, error)

	// ConnectRate bounds new connections per second (0: no bound other
	// than Concurrency).
	ConnectRate float64
	// Concurrency is how many connections are set up at once (dial, TLS
	// handshake, CONNECT up to the CONNACK and SUBACK). Default 50.
	Concurrency int
	// ConnectTimeout bounds each connection's set-up. Default 30 s.
	ConnectTimeout time.Duration
	// KeepAlive is the CONNECT keep-alive; a PINGREQ goes out after that
	// long without writing. Default 60 s.
	KeepAlive time.Duration

	// Telemetry is how devices send telemetry in the steady phase.
	Telemetry Telemetry
	// Interval is, for TelemetryInterval, the time between two messages of
	// one device (the devices' first sends are spread over one interval).
	Interval time.Duration
	// Window is the number of QoS 1 messages a device may have waiting for
	// their PUBACK (default 1): with TelemetryFlood, a device sends
	// whenever it has fewer; with TelemetryInterval, a due message waits
	// for a free slot.
	Window int
	// PayloadSize is the telemetry payload size in bytes: a JSON object of
	// that size, or a run of 'x' under 12 bytes (0: an empty payload).
	PayloadSize int
	// QoS of telemetry: 0 or 1 (default 1 when QoSSet is false).
	QoS    byte
	QoSSet bool

	// Duration is the steady phase, which starts once every device has
	// connected (or failed to). 0: disconnect right after the ramp.
	Duration time.Duration
	// Drain bounds the wait for outstanding PUBACKs and twin answers after
	// the steady phase. Default 5 s.
	Drain time.Duration

	// C2D subscribes each device to its cloud-to-device messages, which are
	// acknowledged and echoed back as telemetry (same payload, $.cid set to
	// the message's $.mid).
	C2D bool
	// Methods subscribes each device to direct methods, answered with
	// status 200 and the request payload.
	Methods bool
	// TwinInterval, when set, makes each device send a reported-properties
	// PATCH this often in the steady phase (one outstanding at a time) and
	// time the hub's answer.
	TwinInterval time.Duration

	// Progress, when set, is called every ProgressInterval (default 1 s)
	// from one goroutine, and once more at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Credential is what a device sends in its CONNECT.
type Credential struct {
	Identity iothub.Identity
	// Password is the SAS token; "" sends no password (for brokers that
	// allow anonymous clients).
	Password string
}

// Telemetry is the telemetry pattern of the steady phase.
type Telemetry int

const (
	// TelemetryNone: the devices stay connected and send only PINGREQs.
	TelemetryNone Telemetry = iota
	// TelemetryInterval: each device sends one message every Interval.
	TelemetryInterval
	// TelemetryFlood: each device sends as fast as its Window allows
	// (QoS 0: as fast as the connection takes them).
	TelemetryFlood
)

func (t Telemetry) String() string {
	switch t {
	case TelemetryInterval:
		return "interval"
	case TelemetryFlood:
		return "flood"
	}
	return "none"
}

// clientType is the DeviceClientType of the load devices' user names.
const clientType = "hubkit-devicesim-load"

func (c *Config) setDefaults() error {
	if c.Concurrency <= 0 {
		c.Concurrency = 50
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 60 * time.Second
	}
	if c.Window <= 0 {
		c.Window = 1
	}
	if c.PayloadSize < 0 {
		return fmt.Errorf("loadgen: payload size %d is negative", c.PayloadSize)
	}
	if !c.QoSSet {
		c.QoS = 1
	}
	if c.Drain <= 0 {
		c.Drain = 5 * time.Second
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	switch {
	case c.Addr == "":
		return errors.New("loadgen: no address to dial")
	case c.HostName == "":
		return errors.New("loadgen: no hub host name")
	case c.Credential == nil:
		return errors.New("loadgen: no credentials")
	case c.Count < 0 || c.First < 0:
		return fmt.Errorf("loadgen: device range [%d, %d+%d) is negative", c.First, c.First, c.Count)
	case c.QoS > 1:
		return fmt.Errorf("loadgen: QoS %d: IoT Hub takes telemetry at QoS 0 or 1", c.QoS)
	case c.Telemetry == TelemetryInterval && c.Interval <= 0:
		return errors.New("loadgen: interval telemetry needs a positive interval")
	case c.KeepAlive > 65535*time.Second:
		return fmt.Errorf("loadgen: keep-alive %v is over MQTT's 65535 s", c.KeepAlive)
	}
	return nil
}
