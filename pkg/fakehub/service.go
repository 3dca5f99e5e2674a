package fakehub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hubkit/hubkit/pkg/fakehub/internal/restapi"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// serviceListener is the HTTPS server of the service API.
type serviceListener struct {
	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc // ends the base context: open telemetry streams stop
	done   chan struct{}
}

// ServiceHandler returns the service REST API (IoT Hub's own paths and JSON
// shapes for the registry, twins and direct methods, plus documented
// /hubkit extensions for C2D, telemetry and rejections), authorized by SAS
// tokens of the hub's shared access policies (Authorization:
// SharedAccessSignature sr={host}&sig=...&se=...&skn=iothubowner). Mount it
// on any server; Options.ServiceAddr serves it over HTTPS.
func (s *Server) ServiceHandler() http.Handler {
	skew := s.opts.TokenExpiryGrace // after setDefaults: 0 means none, as for MQTT
	if skew == 0 {
		skew = -1 // restapi reads 0 as its default
	}
	return restapi.NewHandler(serviceBackend{s}, restapi.Options{
		HostName: s.opts.HostName, Now: s.opts.Now, TokenNow: s.realNow, Rand: s.opts.Rand, Skew: skew, Logger: s.log,
	})
}

func (s *Server) startService() error {
	ln, err := net.Listen("tcp", s.opts.ServiceAddr)
	if err != nil {
		return fmt.Errorf("fakehub: service API: listen %s: %w", s.opts.ServiceAddr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sl := &serviceListener{ln: ln, cancel: cancel, done: make(chan struct{})}
	sl.srv = &http.Server{
		Handler:           s.httpHandler(),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute, // no WriteTimeout: telemetry follow streams are long
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.opts.TLS != nil {
		cfg := s.opts.TLS.Clone()
		cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
		cfg.NextProtos = []string{"h2", "http/1.1"}
		sl.srv.TLSConfig = cfg
		ln = tls.NewListener(ln, cfg)
	} else {
		s.log.Warn("service API over plain HTTP (InsecureService): policy tokens and device keys cross the network in the clear", "addr", ln.Addr().String())
	}
	s.service = sl
	go func() {
		defer close(sl.done)
		if err := sl.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("service API stopped", "error", err)
		}
	}()
	return nil
}

func (s *Server) stopService() {
	sl := s.service
	if sl == nil {
		return
	}
	sl.cancel()
	// Graceful for a moment, then closed: HTTP/2 connections would make Shutdown wait a
	// whole second for their GOAWAY, and open streams have already been told to end.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := sl.srv.Shutdown(ctx); err != nil {
		_ = sl.srv.Close()
	}
	<-sl.done
}

// ServiceAddr returns the service API listener's address (host:port), or ""
// when Options.ServiceAddr was not set.
func (s *Server) ServiceAddr() string {
	if s.service == nil {
		return ""
	}
	return s.service.ln.Addr().String()
}

// ServiceURL returns the base URL of the service API for clients:
// https://{HostName}:{port} (http:// without TLS), or "" when it is not
// served.
func (s *Server) ServiceURL() string {
	a := s.ServiceAddr()
	if a == "" {
		return ""
	}
	_, port, _ := net.SplitHostPort(a)
	scheme := "https"
	if s.opts.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + net.JoinHostPort(s.opts.HostName, port)
}

// ServiceConnectionString returns the iothubowner policy's connection
// string, HostName={host};SharedAccessKeyName=iothubowner;SharedAccessKey=...,
// for the service API and fakehub's CLI verbs ("" if the policy was removed).
func (s *Server) ServiceConnectionString() string {
	p, ok := s.opts.Registry.Policy("iothubowner")
	if !ok {
		return ""
	}
	return sas.ConnectionString{HostName: s.opts.HostName, SharedAccessKeyName: p.KeyName, SharedAccessKey: p.PrimaryKey}.String()
}

// Device returns the registry record of a device or module with its live
// fields filled: connection state and time, last activity, and the C2D
// queue depth (iothub.ErrDeviceNotFound, iothub.ErrModuleNotFound).
func (s *Server) Device(id iothub.Identity) (iothub.Device, error) {
	d, ok := s.opts.Registry.Get(id)
	if !ok {
		return iothub.Device{}, s.opts.Registry.Exists(id)
	}
	return s.live(d), nil
}

// Devices returns the device records (modules excluded) with their live
// fields, sorted by ID.
func (s *Server) Devices() []iothub.Device {
	ds := s.opts.Registry.Devices()
	for i := range ds {
		ds[i] = s.live(ds[i])
	}
	return ds
}

// Modules returns the module records of a device with their live fields.
func (s *Server) Modules(deviceID string) ([]iothub.Device, error) {
	ms, err := s.opts.Registry.Modules(deviceID)
	for i := range ms {
		ms[i] = s.live(ms[i])
	}
	return ms, err
}

// live fills the fields of a registry record that the hub knows at run time.
func (s *Server) live(d iothub.Device) iothub.Device {
	id := d.Identity()
	d.ConnectionState = iothub.StateDisconnected
	if ss := s.cloud.sessionFor(id); ss != nil {
		d.ConnectionState, d.ConnectionStateUpdatedTime, d.LastActivityTime = iothub.StateConnected, ss.connectedAt, ss.connectedAt
	}
	d.CloudToDeviceMessageCount = len(s.cloud.c2d.List(id))
	return d
}
