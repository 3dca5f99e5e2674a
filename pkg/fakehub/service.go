package fakehub

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
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
		HostName: s.opts.HostName, Now: s.opts.Now, Rand: s.opts.Rand, Skew: skew, Logger: s.log,
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
		Handler:           s.ServiceHandler(),
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
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
	return sas.ConnectionString{HostName: s.opts.HostName, SharedAccessKeyName: p.Name, SharedAccessKey: p.Keys.Primary}.String()
}

// identityExists returns ErrDeviceNotFound or ErrModuleNotFound unless id
// is in the registry.
func (s *Server) identityExists(id iothub.Identity) error {
	d, ok := s.opts.Registry.Device(id.DeviceID)
	if !ok {
		return serviceError(iothub.ErrorDeviceNotFound, "device %q is not in the registry", id.DeviceID)
	}
	if id.IsModule() {
		if _, ok := d.module(id.ModuleID); !ok {
			return serviceError(404010, "module %s is not in the registry", id)
		}
	}
	return nil
}

// identityETag derives the registry etag of an identity from its status and
// keys (the registry keeps none): it changes when they change.
func (s *Server) identityETag(id iothub.Identity) (string, error) {
	if err := s.identityExists(id); err != nil {
		return "", err
	}
	d, _ := s.opts.Registry.Device(id.DeviceID)
	h := sha256.New()
	if id.IsModule() {
		m, _ := d.module(id.ModuleID)
		fmt.Fprintf(h, "module\x00%s\x00%s\x00%s\x00%s", m.ID, m.GenerationID, m.Keys.Primary, m.Keys.Secondary)
	} else {
		fmt.Fprintf(h, "device\x00%s\x00%s\x00%s\x00%s\x00%s", d.ID, d.GenerationID, d.Status, d.Keys.Primary, d.Keys.Secondary)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)[:9]), nil
}
