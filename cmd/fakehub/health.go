package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/cli"
)

// newHealthCmd is the readiness probe: GET /health, exit 0 when the hub answers ready. It
// needs no token (the route has none) and no shell, so a container's health check can run
// the image's own binary.
func newHealthCmd() *cobra.Command {
	var (
		url     string
		ca      string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check that a hub is up and ready (GET /health; exit 0 when it is)",
		Long: `Ask a running fakehub whether it is ready (GET /health on its service API,
which needs no token and returns no secrets) and exit 0 when it answers
{"status":"ready"}, 1 otherwise with the reason. Made for scripts and for
container health checks: the image has no shell or curl, so the check runs
the binary itself. The server certificate is checked against --ca.`,
		Example: `  fakehub health --ca testdata/certs
  fakehub health --url https://localhost:8443/health --ca /var/lib/fakehub/ca`,
		Args: argsExactly(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return cli.Usagef("--timeout must be positive, got %s", timeout)
			}
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			if ca != "" {
				pool, err := certs.LoadPool(ca)
				if err != nil {
					return cli.Usage(err)
				}
				tr.TLSClientConfig.RootCAs = pool
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			host, err := probeHealth(ctx, &http.Client{Transport: tr}, url)
			if err != nil {
				return cli.NewError(cli.ExitError, fmt.Errorf("health: %s: %w", url, err),
					"is fakehub running, its service API at this URL? (--url; the banner prints it as service:)")
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "ready: %s\n", host)
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&url, "url", "https://localhost:8443/health", "the hub's health `URL`")
	fs.StringVar(&ca, "ca", "", cli.CAFlagUsage)
	fs.DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	return cmd
}

// probeHealth GETs url and returns the host name a ready hub reports.
func probeHealth(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var h struct {
		Status   string `json:"status"`
		HostName string `json:"hostName"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d, want 200", resp.StatusCode)
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Status != "ready" {
		return "", errors.New(`the answer is not {"status":"ready"}`)
	}
	return h.HostName, nil
}
