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
)

// startHTTP serves the DPS HTTPS API (registration and service) with the hub's certificate.
func (d *DPS) startHTTP(addr string) error {
	s := d.s
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakehub: DPS HTTPS: listen %s: %w", addr, err)
	}
	cfg := s.opts.TLS.Clone()
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	cfg.NextProtos = []string{"h2", "http/1.1"}
	// A device may attest with a client certificate (X.509, judged by the engine, §7.14):
	// ask for one without requiring it.
	cfg.ClientAuth = tls.RequestClientCert
	d.httpLn = ln
	d.httpSrv = &http.Server{
		Handler:           d.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		TLSConfig:         cfg,
	}
	go func() {
		defer close(d.done)
		if err := d.httpSrv.Serve(tls.NewListener(ln, cfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("DPS HTTPS API stopped", "error", err)
		}
	}()
	return nil
}

func (d *DPS) stopHTTP() {
	if d.httpSrv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := d.httpSrv.Shutdown(ctx); err != nil {
		_ = d.httpSrv.Close()
	}
	<-d.done
}
