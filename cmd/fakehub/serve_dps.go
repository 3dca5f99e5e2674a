package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub/dps"
)

// dpsFlags are serve's Device Provisioning Service flags.
type dpsFlags struct {
	addr       string
	http       string
	idScope    string
	hostName   string
	retryAfter time.Duration
	throttle   bool
}

func (f *dpsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.addr, "dps", "", "also run a Device Provisioning Service: its MQTT over TLS listen `ADDR` (e.g. :8884; needs --ca)")
	fs.StringVar(&f.http, "dps-http", ":8444", "the DPS registration and service APIs (HTTPS) listen `ADDR`, with --dps")
	fs.StringVar(&f.idScope, "dps-id-scope", dps.DefaultIDScope, "the DPS `ID_SCOPE`")
	fs.StringVar(&f.hostName, "dps-hostname", "", "the DPS service host `NAME` (service tokens' sr; default the hub's host name)")
	fs.DurationVar(&f.retryAfter, "dps-retry-after", 3*time.Second, "retry-after of an accepted registration (whole seconds)")
	fs.BoolVar(&f.throttle, "dps-throttle", false, "apply DPS's rate limits (5 polls per 10 s per device, 1000 registrations per minute)")
}

// options returns the DPS options of the flags and the devices file's "dps" section (nil
// without --dps).
func (f *dpsFlags) options(devicesFile string, tls bool) (*fakehub.DPSOptions, error) {
	if f.addr == "" {
		return nil, nil
	}
	if !tls {
		return nil, cli.Usagef("--dps needs --ca: DPS speaks only TLS")
	}
	o := &fakehub.DPSOptions{}
	if devicesFile != "" {
		fh, err := os.Open(devicesFile)
		if err != nil {
			return nil, err
		}
		fromFile, err := fakehub.LoadDPS(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", devicesFile, err)
		}
		if fromFile != nil {
			o = fromFile
		}
	}
	o.Addr, o.HTTPAddr, o.RetryAfter = f.addr, f.http, f.retryAfter
	if o.IDScope == "" || f.idScope != dps.DefaultIDScope {
		o.IDScope = f.idScope
	}
	if f.hostName != "" {
		o.HostName = f.hostName
	}
	if err := dps.ValidateIDScope(o.IDScope); err != nil {
		return nil, cli.Usagef("--dps-id-scope: %v", err)
	}
	if f.throttle {
		o.Throttle = fakehub.DefaultDPSThrottle
	}
	return o, nil
}

// printDPSBanner prints where the DPS listens and how to provision each enrollment.
func printDPSBanner(w io.Writer, srv *fakehub.Server, caFile string) {
	d := srv.DPS()
	if d == nil {
		return
	}
	_, mqttPort, _ := net.SplitHostPort(d.Addr())
	_, httpPort, _ := net.SplitHostPort(d.HTTPAddr())
	fmt.Fprintf(w, "dps:     MQTT over TLS on %s, HTTPS on %s, ID scope %s\n", d.Addr(), d.HTTPAddr(), d.IDScope())
	fmt.Fprintf(w, "  service connection string: %s\n", d.ServiceConnectionString())
	urlFlag := ""
	if httpPort != "8444" {
		urlFlag = " --dps-url " + d.URL()
	}
	fmt.Fprintf(w, "  fakehub dps enrollments list -c '%s' --ca %s%s\n", d.ServiceConnectionString(), caFile, urlFlag)
	endpoint := "localhost:" + mqttPort
	for _, en := range d.Enrollments() {
		fmt.Fprintf(w, "  enrollment %s: devicesim provision --global-endpoint localhost --endpoint %s --id-scope %s --registration-id %s --key %s --ca %s\n",
			en.RegistrationID, endpoint, d.IDScope(), en.RegistrationID, en.Attestation.SymmetricKey.PrimaryKey, caFile)
	}
	for _, g := range d.Groups() {
		fmt.Fprintf(w, "  group %s: devicesim provision --global-endpoint localhost --endpoint %s --id-scope %s --registration-id ID --group-key %s --ca %s\n",
			g.EnrollmentGroupID, endpoint, d.IDScope(), g.Attestation.SymmetricKey.PrimaryKey, caFile)
	}
}
