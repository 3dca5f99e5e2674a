package fakehub

import (
	"crypto/tls"
	"strings"
)

// deviceTLS returns the TLS configuration of the device listeners (MQTT on Addr and MQTT
// over WebSockets): every TLS rule of the device side is decided here, and only here.
//
//   - TLS 1.2 at least (docs/iothub-behavior.md §1.4);
//   - a client certificate is requested, not required, and not verified by the handshake
//     (docs/iothub-behavior.md §1.5): a SAS device sends none, an X.509 device's chain is
//     judged at CONNECT (x509auth.go), where the refusal can carry a reason;
//   - a client whose SNI names Options.DeviceHostName may negotiate TLS 1.3; every other
//     client (the classic host names, or no SNI) gets at most Options.ClassicTLSMaxVersion,
//     TLS 1.2 by default, as IoT Hub's classic endpoints (docs/iothub-behavior.md §1.26);
//   - while a TLS drill is presented (Server.PresentTLSDrill), its chain replaces the
//     hub's own for the handshakes that begin then.
//
// A caller-supplied GetConfigForClient runs first; the rules are applied to its answer.
func (s *Server) deviceTLS() *tls.Config {
	base := s.opts.TLS.Clone()
	base.MinVersion = max(base.MinVersion, tls.VersionTLS12)
	if base.ClientAuth == tls.NoClientCert {
		base.ClientAuth = tls.RequestClientCert
	}
	deviceHost := strings.ToLower(stripPort(s.opts.DeviceHostName))
	user := base.GetConfigForClient
	apply := func(cfg *tls.Config, hello *tls.ClientHelloInfo) *tls.Config {
		cfg = cfg.Clone()
		cfg.GetConfigForClient = nil
		cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
		if cfg.ClientAuth == tls.NoClientCert {
			cfg.ClientAuth = tls.RequestClientCert
		}
		s.applyDrill(cfg, hello)
		if deviceHost != "" && strings.EqualFold(hello.ServerName, deviceHost) {
			return cfg // the device host name: TLS 1.3 as Go offers it, unless MaxVersion says otherwise
		}
		s.capClassicTLS(cfg)
		return cfg
	}
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		cfg := base
		if user != nil {
			c, err := user(hello)
			if err != nil {
				return nil, err
			}
			if c != nil {
				cfg = c
			}
		}
		return apply(cfg, hello), nil
	}
	return base
}

// serviceTLS returns the TLS configuration of the service API on ServiceAddr: a classic
// host name's ({hub}.azure-devices.net), so TLS 1.2 at least and at most
// Options.ClassicTLSMaxVersion (docs/iothub-behavior.md §1.4, §1.26), with HTTP/2.
func (s *Server) serviceTLS() *tls.Config {
	cfg := s.opts.TLS.Clone()
	s.capClassicTLS(cfg)
	cfg.NextProtos = []string{"h2", "http/1.1"}
	return cfg
}

// capClassicTLS limits cfg to the TLS versions of IoT Hub's classic endpoints: TLS 1.2 at
// least, and at most Options.ClassicTLSMaxVersion (0: TLS 1.2), unless cfg's own
// MaxVersion is lower.
func (s *Server) capClassicTLS(cfg *tls.Config) {
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	classicMax := s.opts.ClassicTLSMaxVersion
	if classicMax == 0 {
		classicMax = tls.VersionTLS12
	}
	classicMax = max(classicMax, cfg.MinVersion)
	if cfg.MaxVersion == 0 || cfg.MaxVersion > classicMax {
		cfg.MaxVersion = classicMax
	}
}
