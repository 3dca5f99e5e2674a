// Command baremochi runs mochi-mqtt as it comes (default capabilities, an
// allow-all hook, logs discarded) on a TLS or TCP listener: the baseline
// that make bench-compare measures fakehub against, so that what it shows
// is fakehub's own cost on top of the broker it is built on.
//
// Usage:
//
//	go run ./internal/brokertest/cmd/baremochi -listen 127.0.0.1:8884 -cert leaf.pem -key leaf-key.pem
//
// Without -cert and -key it listens on plain TCP. SIGINT or SIGTERM stops
// it (exit 0); a bad flag exits 2, a listener that cannot start 1.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/hubkit/hubkit/internal/brokertest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("baremochi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen", "127.0.0.1:8884", "listen address")
	cert := fs.String("cert", "", "PEM certificate (chain) of the TLS listener")
	key := fs.String("key", "", "PEM private key of the TLS listener")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if (*cert == "") != (*key == "") {
		fmt.Fprintln(stderr, "baremochi: -cert and -key go together")
		return 2
	}
	var tlsConf *tls.Config
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fmt.Fprintf(stderr, "baremochi: %v\n", err)
			return 1
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(brokertest.AllowAll), nil); err != nil {
		fmt.Fprintf(stderr, "baremochi: %v\n", err)
		return 1
	}
	l := listeners.NewTCP(listeners.Config{ID: "bare", Address: *addr, TLSConfig: tlsConf})
	if err := srv.AddListener(l); err != nil {
		fmt.Fprintf(stderr, "baremochi: %v\n", err)
		return 1
	}
	if err := srv.Serve(); err != nil {
		fmt.Fprintf(stderr, "baremochi: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "baremochi: listening on %s\n", l.Address())
	<-ctx.Done()
	return 0
}
