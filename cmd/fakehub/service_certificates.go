package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// x509Flags are devices add's X.509 flags.
type x509Flags struct {
	on                    bool
	thumbprint, secondary string
	certFile              string
}

func (x *x509Flags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&x.on, "x509", false, "an X.509 identity: selfSigned with --thumbprint or --cert, else certificateAuthority")
	fs.StringVar(&x.thumbprint, "thumbprint", "", "primary thumbprint (SHA-1 or SHA-256 hex) of a selfSigned identity")
	fs.StringVar(&x.secondary, "secondary-thumbprint", "", "secondary thumbprint of a selfSigned identity")
	fs.StringVar(&x.certFile, "cert", "", "PEM `FILE` of the device certificate: its SHA-256 thumbprint becomes the primary one")
}

// authentication returns the X.509 authentication the flags ask for (zero without --x509).
func (x *x509Flags) authentication(keysGiven bool) (iothub.Authentication, error) {
	if !x.on {
		if x.thumbprint != "" || x.secondary != "" || x.certFile != "" {
			return iothub.Authentication{}, cli.Usagef("--thumbprint, --secondary-thumbprint and --cert need --x509")
		}
		return iothub.Authentication{}, nil
	}
	if keysGiven {
		return iothub.Authentication{}, cli.Usagef("--x509 identities have no keys: drop --key, --key-file and --secondary-key")
	}
	if x.certFile != "" && x.thumbprint != "" {
		return iothub.Authentication{}, cli.Usagef("use either --cert or --thumbprint, not both")
	}
	primary := x.thumbprint
	if x.certFile != "" {
		b, err := os.ReadFile(x.certFile)
		if err != nil {
			return iothub.Authentication{}, fmt.Errorf("reading the device certificate: %w", err)
		}
		c, err := iothub.ParseCertificate(string(b))
		if err != nil {
			return iothub.Authentication{}, fmt.Errorf("%s: %w", x.certFile, err)
		}
		_, primary = iothub.Thumbprints(c.Raw)
	}
	if primary == "" && x.secondary == "" {
		return iothub.CAAuth(), nil
	}
	for _, t := range []string{primary, x.secondary} {
		if t == "" {
			continue
		}
		if _, err := iothub.NormalizeThumbprint(t); err != nil {
			return iothub.Authentication{}, cli.Usagef("%v", err)
		}
	}
	return iothub.X509Auth(primary, x.secondary), nil
}

const certificateLong = `Manage the CA certificates that authenticate "certificateAuthority" devices, the
way "az iot hub certificate" does on a real hub: upload a root or intermediate CA
(create), then prove you hold its private key (generate-verification-code, sign
a certificate whose CN is the code with the CA's key, verify), or upload it as
--verified. A device whose certificate chains to a verified CA and whose CN is
its device ID (deviceId/moduleId for a module) connects with an empty password.

The real hub keeps these certificates in Azure Resource Manager; fakehub serves
the same JSON shapes under /hubkit/certificates (a hubkit extension).` + serviceLong

func newCertificateCmd(env *serviceEnv) *cobra.Command {
	var sf serviceFlags
	cmd := &cobra.Command{
		Use:   "certificate",
		Short: "Register and verify CA certificates for X.509 CA devices",
		Long:  certificateLong,
		Example: `  fakehub certificate create my-ca --path myca/ca.pem
  CODE=$(fakehub certificate generate-verification-code my-ca)
  sastool cert verification --ca myca --code "$CODE" --out proof
  fakehub certificate verify my-ca --path proof/verification.pem
  fakehub certificate list`,
		Args: func(cmd *cobra.Command, args []string) error {
			verbs := "create, list, show, delete, generate-verification-code or verify"
			if len(args) == 0 {
				return cli.Usagef("%s needs a verb: %s", cmd.CommandPath(), verbs)
			}
			return cli.Usagef("%s: unknown verb %q (want %s)", cmd.CommandPath(), args[0], verbs)
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	sf.register(cmd)
	cmd.AddCommand(newCertCreateCmd(env, &sf), newCertListCmd(env, &sf), newCertShowCmd(env, &sf), newCertDeleteCmd(env, &sf),
		newCertCodeCmd(env, &sf), newCertVerifyCmd(env, &sf))
	return cmd
}

func readPEMFile(path string) (string, error) {
	if path == "" {
		return "", cli.Usagef("--path FILE is required (the certificate's PEM or .cer file)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the certificate: %w", err)
	}
	return string(b), nil
}

func newCertCreateCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	var path string
	var verified bool
	cmd := &cobra.Command{
		Use:     "create NAME --path FILE [--verified]",
		Short:   "Upload a root or intermediate CA certificate",
		Example: `  fakehub certificate create my-ca --path myca/ca.pem --verified`,
		Args:    argsExactly("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readPEMFile(path)
			if err != nil {
				return err
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			out, err := c.PutCertificate(cmd.Context(), args[0], text, verified)
			if err != nil {
				return explain(err, c, "uploading certificate "+args[0])
			}
			out.Properties.Certificate = ""
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "PEM (or base64 .cer) `FILE` of the CA certificate")
	cmd.Flags().BoolVar(&verified, "verified", false, "mark it verified on upload (no proof of possession)")
	return cmd
}

func newCertListCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the registered CA certificates",
		Example: `  fakehub certificate list`,
		Args:    argsExactly(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			cs, err := c.Certificates(cmd.Context())
			if err != nil {
				return explain(err, c, "listing certificates")
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), iothub.CertificateList{Value: append([]iothub.Certificate{}, cs...)})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSUBJECT\tVERIFIED\tEXPIRY\tTHUMBPRINT")
			for _, ce := range cs {
				p := ce.Properties
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", ce.Name, p.Subject, p.IsVerified, p.Expiry.UTC().Format(time.RFC3339), p.Thumbprint)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print ARM's CertificateListDescription JSON")
	return cmd
}

func newCertShowCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "show NAME",
		Short:   "Print a registered CA certificate as ARM's JSON",
		Example: `  fakehub certificate show my-ca`,
		Args:    argsExactly("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			out, err := c.Certificate(cmd.Context(), args[0])
			if err != nil {
				return explain(err, c, "reading certificate "+args[0])
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
}

func newCertDeleteCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Short:   "Remove a registered CA certificate",
		Example: `  fakehub certificate delete my-ca`,
		Args:    argsExactly("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			if err := c.DeleteCertificate(cmd.Context(), args[0]); err != nil {
				return explain(err, c, "deleting certificate "+args[0])
			}
			return nil
		},
	}
}

func newCertCodeCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "generate-verification-code NAME",
		Short: "Print a verification code for proof of possession",
		Long: `Print the verification code of CA certificate NAME (a new one each time; the
last one counts). Sign a certificate whose subject CN is the code with the CA's
private key ("sastool cert verification --ca DIR --code CODE") and upload it
with "fakehub certificate verify NAME --path FILE".`,
		Example: `  CODE=$(fakehub certificate generate-verification-code my-ca)`,
		Args:    argsExactly("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			out, err := c.GenerateVerificationCode(cmd.Context(), args[0])
			if err != nil {
				return explain(err, c, "generating a verification code for "+args[0])
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), out.Properties.VerificationCode)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print ARM's CertificateWithNonceDescription JSON instead of the bare code")
	return cmd
}

func newCertVerifyCmd(env *serviceEnv, sf *serviceFlags) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:     "verify NAME --path FILE",
		Short:   "Complete proof of possession with the verification certificate",
		Example: `  fakehub certificate verify my-ca --path proof/verification.pem`,
		Args:    argsExactly("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := readPEMFile(path)
			if err != nil {
				return err
			}
			c, err := sf.client(env)
			if err != nil {
				return err
			}
			out, err := c.VerifyCertificate(cmd.Context(), args[0], text)
			if err != nil {
				return explain(err, c, "verifying certificate "+args[0])
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "PEM `FILE` of the certificate whose CN is the verification code")
	return cmd
}
