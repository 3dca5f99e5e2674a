package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubkit/hubkit/internal/certs"
	"github.com/hubkit/hubkit/internal/cli"
	"github.com/hubkit/hubkit/pkg/iothub"
)

const certLong = `Make X.509 test certificates for IoT Hub's certificate identities, offline:

  ca            a CA folder (ca.pem, ca-key.pem) to sign device certificates
  device        a device (or module) certificate, CN = the device ID, signed by
                a CA folder, or self-signed (--self-signed) for thumbprint
                identities; prints its thumbprints as az takes them
  verification  the proof-of-possession certificate of a CA: CN = the
                verification code the hub generated, signed by the CA's key
  thumbprint    the SHA-1 and SHA-256 thumbprints of a certificate file

Keys are ECDSA P-256 unless --key-type says rsa (2048), rsa-4096 or
ecdsa-p384. Key files are written 0600 as PEM "PRIVATE KEY" (PKCS #8), which
mosquitto --key, Python's ssl, Node and openssl read. These are test
certificates: keep production keys in an HSM.`

const certExample = `  sastool cert ca --dir myca
  sastool cert device --ca myca --device cam1 --out certs        # certs/cam1.pem, certs/cam1-key.pem
  sastool cert device --self-signed --device cam2 --key-type rsa --validity 30d
  sastool cert verification --ca myca --code "$CODE" --out proof  # proof/verification.pem
  sastool cert thumbprint certs/cam1.pem`

func newCertCmd(st *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "cert",
		Short:   "Make X.509 test certificates: a CA, device certificates, proof of possession, thumbprints",
		Long:    certLong,
		Example: certExample,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("cert needs a verb: ca, device, verification or thumbprint")
			}
			return cli.Usagef("cert: unknown verb %q (want ca, device, verification or thumbprint)", args[0])
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(newCertCACmd(st), newCertDeviceCmd(st), newCertVerificationCmd(st), newCertThumbprintCmd(st))
	return cmd
}

// certOut is what a cert verb prints (as text, or one --json object).
type certOut struct {
	Subject          string `json:"subject"`
	Cert             string `json:"certFile"`
	Key              string `json:"keyFile,omitempty"`
	NotAfter         string `json:"notAfter"`
	ThumbprintSHA1   string `json:"thumbprintSha1"`
	ThumbprintSHA256 string `json:"thumbprintSha256"`
}

func (st *streams) printCert(o certOut, asJSON bool) error {
	if asJSON {
		return writeJSON(st.out, o)
	}
	_, err := fmt.Fprintf(st.out, "subject:    CN=%s\ncert:       %s\n%snot after:  %s\nthumbprint: %s (SHA-256)\nthumbprint: %s (SHA-1)\n",
		o.Subject, o.Cert, orLine("key:        ", o.Key), o.NotAfter, o.ThumbprintSHA256, o.ThumbprintSHA1)
	return err
}

func orLine(label, v string) string {
	if v == "" {
		return ""
	}
	return label + v + "\n"
}

func leafOut(l *certs.Leaf, certFile, keyFile string) certOut {
	s1, s256 := iothub.Thumbprints(l.Cert.Raw)
	return certOut{Subject: l.Cert.Subject.CommonName, Cert: certFile, Key: keyFile, NotAfter: l.Cert.NotAfter.UTC().Format(time.RFC3339),
		ThumbprintSHA1: s1, ThumbprintSHA256: s256}
}

type certCommon struct {
	keyType  string
	validity ttlValue
	now      timeValue
	json     bool
}

func (c *certCommon) register(cmd *cobra.Command, defaultValidity time.Duration) {
	fs := cmd.Flags()
	c.validity.d = defaultValidity
	fs.StringVar(&c.keyType, "key-type", "ecdsa", "key `TYPE`: ecdsa (P-256), ecdsa-p384, rsa (2048) or rsa-4096")
	fs.Var(&c.validity, "validity", "how long the certificate is valid (365d, 720h, 90m, seconds)")
	fs.Var(&c.now, "now", "pretend the time is `TIME` (Unix seconds or RFC 3339): the certificate is valid from an hour before")
	fs.BoolVar(&c.json, "json", false, "print one JSON object (subject, files, notAfter, thumbprints)")
}

func (c *certCommon) parse() (certs.KeyType, error) {
	kt, err := certs.ParseKeyType(c.keyType)
	if err != nil {
		return "", cli.Usagef("--key-type: %v", err)
	}
	if c.validity.d <= 0 {
		return "", cli.Usagef("--validity must be positive")
	}
	return kt, nil
}

func newCertCACmd(st *streams) *cobra.Command {
	var c certCommon
	var dir, cn string
	var force bool
	cmd := &cobra.Command{
		Use:     "ca --dir DIR",
		Short:   "Create a CA folder (ca.pem, ca-key.pem) to sign device certificates",
		Example: `  sastool cert ca --dir myca --cn "Contoso test devices CA"`,
		Args:    noArgs,
		PreRunE: checkFlags(oneOf("dir")),
		RunE: func(*cobra.Command, []string) error {
			kt, err := c.parse()
			if err != nil {
				return err
			}
			if !force {
				if _, err := os.Stat(filepath.Join(dir, certs.CertFile)); !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("%s already exists: use --force to replace the CA", filepath.Join(dir, certs.CertFile))
				}
			}
			ca, err := certs.NewCAWith(certs.CAOptions{CommonName: cn, Validity: c.validity.d, KeyType: kt, MaxPathLen: -1}, clock(&c.now), nil)
			if err != nil {
				return err
			}
			if err := ca.Save(dir); err != nil {
				return err
			}
			return st.printCert(leafOut(&certs.Leaf{Cert: ca.Cert}, filepath.Join(dir, certs.CertFile), filepath.Join(dir, certs.KeyFile)), c.json)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "`DIR` to write ca.pem and ca-key.pem to (created if needed)")
	cmd.Flags().StringVar(&cn, "cn", "hubkit device test CA", "subject common `NAME` of the CA")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing CA in DIR")
	c.register(cmd, 3650*24*time.Hour)
	sortFlags(cmd.Flags())
	return cmd
}

// loadCA reads a CA folder (or the folder of a ca.pem path).
func loadCA(path string) (*certs.CA, error) {
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		path = filepath.Dir(path)
	}
	ca, err := certs.LoadCA(path)
	if err != nil {
		return nil, fmt.Errorf("--ca %s: %w", path, err)
	}
	return ca, nil
}

func newCertDeviceCmd(st *streams) *cobra.Command {
	var c certCommon
	var caDir, id, module, out, name string
	var self bool
	cmd := &cobra.Command{
		Use:   "device --device ID [--module ID] (--ca DIR | --self-signed) [--out DIR]",
		Short: "Make a device (or module) certificate: CN = the device ID",
		Long: `Make a device certificate whose subject common name is the device ID (or
deviceId/moduleId for a module), as IoT Hub requires for CA authentication, with
client authentication as its extended key usage. --ca DIR signs it with that CA
folder (register the CA on the hub: az iot hub certificate create, or fakehub
certificate create); --self-signed makes a self-signed one for a thumbprint
identity (register the printed SHA-256 or SHA-1 thumbprint: az iot hub
device-identity create --am x509_thumbprint --ptp THUMBPRINT, or fakehub devices
add ID --x509 --thumbprint THUMBPRINT). The certificate file holds the leaf and,
when the CA is an intermediate, its chain: what the device presents.`,
		Example: `  sastool cert device --ca myca --device cam1 --out certs
  sastool cert device --ca myca --device cam1 --module vision --out certs   # CN=cam1/vision
  sastool cert device --self-signed --device cam2 --validity 30d --json`,
		Args:    noArgs,
		PreRunE: checkFlags(oneOf("device"), exclusive("ca", "self-signed"), oneOf("ca", "self-signed")),
		RunE: func(*cobra.Command, []string) error {
			kt, err := c.parse()
			if err != nil {
				return err
			}
			cn := id
			if module != "" {
				cn += "/" + module
			}
			if err := (iothub.Identity{DeviceID: id, ModuleID: module}).Validate(); err != nil {
				return cli.Usagef("--device/--module: %v", err)
			}
			validity := c.validity.d
			now := clock(&c.now)
			var l *certs.Leaf
			if self {
				l, err = certs.SelfSignedLeaf(certs.LeafOptions{CommonName: cn, Validity: validity, KeyType: kt}, now, nil)
			} else {
				ca, lerr := loadCA(caDir)
				if lerr != nil {
					return lerr
				}
				l, err = ca.IssueLeaf(certs.LeafOptions{CommonName: cn, Validity: validity, KeyType: kt}, now)
			}
			if err != nil {
				return err
			}
			if name == "" {
				name = strings.ReplaceAll(cn, "/", "_")
			}
			certFile, keyFile, err := l.Save(out, name)
			if err != nil {
				return err
			}
			return st.printCert(leafOut(l, certFile, keyFile), c.json)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&id, "device", "", "the device `ID` (the certificate's CN)")
	fs.StringVar(&module, "module", "", "a module `ID`: CN becomes deviceId/moduleId")
	fs.StringVar(&caDir, "ca", "", "CA folder `DIR` (ca.pem, ca-key.pem) to sign with")
	fs.BoolVar(&self, "self-signed", false, "make a self-signed certificate (thumbprint authentication)")
	fs.StringVar(&out, "out", ".", "`DIR` to write NAME.pem and NAME-key.pem to")
	fs.StringVar(&name, "name", "", "file `NAME` (default: the device ID, deviceId_moduleId for a module)")
	c.register(cmd, certs.DefaultLeafValidity)
	sortFlags(fs)
	return cmd
}

func newCertVerificationCmd(st *streams) *cobra.Command {
	var c certCommon
	var caDir, code, out string
	cmd := &cobra.Command{
		Use:   "verification --ca DIR --code CODE [--out DIR]",
		Short: "Make the proof-of-possession certificate for a CA's verification code",
		Long: `Make the certificate that proves you hold a CA's private key: subject CN = the
verification code the hub generated (az iot hub certificate
generate-verification-code, or fakehub certificate generate-verification-code),
signed by the CA in DIR. Upload it with az iot hub certificate verify --path, or
fakehub certificate verify NAME --path. Writes DIR/verification.pem.`,
		Example: `  CODE=$(fakehub certificate generate-verification-code my-ca)
  sastool cert verification --ca myca --code "$CODE" --out proof
  fakehub certificate verify my-ca --path proof/verification.pem`,
		Args:    noArgs,
		PreRunE: checkFlags(oneOf("ca"), oneOf("code")),
		RunE: func(*cobra.Command, []string) error {
			kt, err := c.parse()
			if err != nil {
				return err
			}
			ca, err := loadCA(caDir)
			if err != nil {
				return err
			}
			if strings.TrimSpace(code) == "" {
				return cli.Usagef("--code is empty: pass the verification code the hub generated")
			}
			l, err := ca.IssueLeaf(certs.LeafOptions{CommonName: strings.TrimSpace(code), Validity: c.validity.d, KeyType: kt}, clock(&c.now))
			if err != nil {
				return err
			}
			certFile := filepath.Join(out, "verification.pem")
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(certFile, l.CertPEM(), 0o644); err != nil {
				return err
			}
			return st.printCert(leafOut(l, certFile, ""), c.json)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&caDir, "ca", "", "the CA folder `DIR` being verified")
	fs.StringVar(&code, "code", "", "the verification `CODE` the hub generated")
	fs.StringVar(&out, "out", ".", "`DIR` to write verification.pem to")
	c.register(cmd, 30*24*time.Hour)
	sortFlags(fs)
	return cmd
}

func newCertThumbprintCmd(st *streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "thumbprint FILE",
		Short: "Print a certificate's SHA-256 and SHA-1 thumbprints as az takes them",
		Long: `Print the thumbprints of the first certificate in FILE (PEM or base64 DER): SHA-256
then SHA-1, upper-case hex without separators, the form az iot hub
device-identity create --ptp/--stp and the portal take. IoT Hub accepts either.
"-" reads stdin.`,
		Example: `  sastool cert thumbprint cam2.pem
  sastool cert thumbprint --json cam2.pem | jq -r .thumbprintSha256`,
		Args: oneArg("FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			text, err := st.readFile(args[0], "certificate")
			if err != nil {
				return err
			}
			cert, err := iothub.ParseCertificate(text)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			s1, s256 := iothub.Thumbprints(cert.Raw)
			if asJSON {
				return writeJSON(st.out, certOut{Subject: cert.Subject.CommonName, Cert: args[0], NotAfter: cert.NotAfter.UTC().Format(time.RFC3339),
					ThumbprintSHA1: s1, ThumbprintSHA256: s256})
			}
			_, err = fmt.Fprintf(st.out, "%s\n%s\n", s256, s1)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object (subject, notAfter, thumbprints)")
	return cmd
}
