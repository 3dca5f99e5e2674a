package device

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// DialWebSocket opens a WebSocket to IoT Hub's MQTT endpoint, wss://addr/$iothub/websocket
// with sub-protocol mqtt, and returns it as a net.Conn carrying MQTT bytes in binary
// messages: what a raw MQTT client (a test sending packets real clients refuse to send)
// needs to speak to the WebSocket endpoint. tlsConfig must name the hub (ServerName) and
// trust its CA; proxy is as Config.Proxy (nil: none). The handshake is bounded by ctx's
// deadline (10 s without one). When the server closes the connection (with or without a
// WebSocket close frame), Read returns io.EOF, as on TCP.
func DialWebSocket(ctx context.Context, addr string, tlsConfig *tls.Config, proxy func(*http.Request) (*url.URL, error)) (net.Conn, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if proxy == nil {
		proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	}
	c, err := paho.NewWebsocket("wss://"+addr+iothub.WebSocketPath, tlsConfig, timeout, nil, &paho.WebsocketOptions{Proxy: proxy})
	if err != nil {
		return nil, fmt.Errorf("device: WebSocket to %s: %w", addr, networkCause(err))
	}
	return eofConn{c}, nil
}

// eofConn reports a WebSocket that ended (close frame, or 1006: the TCP connection closed
// without one) as io.EOF.
type eofConn struct{ net.Conn }

func (c eofConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		err = io.EOF
	}
	return n, err
}
