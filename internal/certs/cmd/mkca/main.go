// Command mkca creates the test certificate authority that fakehub and the
// tests use: an ECDSA P-256 CA valid for about 100 years, written as
// ca.pem (0644) and ca-key.pem (0600).
//
// Usage:
//
//	go run ./internal/certs/cmd/mkca -dir testdata/certs [-force]
//
// It refuses to replace an existing CA unless -force is given. The key it
// writes is meant for tests only: never trust the CA outside them.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hubkit/hubkit/internal/certs"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, time.Now()))
}

// run is main without the process: exit code 0 ok, 1 error, 2 usage.
func run(args []string, stdout, stderr io.Writer, now time.Time) int {
	flags := flag.NewFlagSet("mkca", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dir := flags.String("dir", "testdata/certs", "directory to write ca.pem and ca-key.pem to (created if needed)")
	force := flags.Bool("force", false, "replace an existing CA")
	cn := flags.String("cn", certs.DefaultCommonName, "subject common name of the CA")
	validity := flags.Duration("validity", certs.DefaultCAValidity, "how long the CA is valid")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mkca [-dir DIR] [-force] [-cn NAME] [-validity DURATION]\n\n"+
			"Creates a test CA (ECDSA P-256) as DIR/%s and DIR/%s.\n"+
			"The private key is test material: never trust this CA outside tests.\n\n", certs.CertFile, certs.KeyFile)
		flags.PrintDefaults()
		fmt.Fprintf(stderr, "\nExamples:\n  go run ./internal/certs/cmd/mkca -dir testdata/certs -force   # what `make certs` runs\n"+
			"  go run ./internal/certs/cmd/mkca -dir /tmp/myca -validity 720h\n")
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "mkca: error: unexpected arguments %q\n", flags.Args())
		return 2
	}
	if !*force {
		for _, name := range []string{certs.CertFile, certs.KeyFile} {
			path := filepath.Join(*dir, name)
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(stderr, "mkca: error: %s already exists; use -force to replace it\n", path)
				return 1
			}
		}
	}
	ca, err := certs.NewCA(*cn, *validity, now, nil)
	if err == nil {
		err = ca.Save(*dir)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mkca: error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s and %s (valid until %s)\n",
		filepath.Join(*dir, certs.CertFile), filepath.Join(*dir, certs.KeyFile), ca.Cert.NotAfter.Format(time.RFC3339))
	return 0
}
