package sas_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/hubkit/hubkit/pkg/sas"
)

func ExampleSign() {
	key, err := sas.DecodeKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		panic(err)
	}
	resource := sas.EncodeResource(sas.DeviceResource("contoso.azure-devices.net", "MyDevice01"))
	tok := sas.Sign(resource, "", key, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	fmt.Println(tok)
	// Output:
	// SharedAccessSignature sr=contoso.azure-devices.net%2Fdevices%2FMyDevice01&sig=dpCx63CkFH4MIH%2BL%2Bfb5N6i6du%2B8r74HUI3%2B7Gfg1Wc%3D&se=1893456000
}

func ExampleParse() {
	tok, err := sas.Parse("SharedAccessSignature sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D&se=12345&skn=encode%28%27Me%27%29&sr=uri")
	if err != nil {
		panic(err)
	}
	fmt.Println(tok.Resource, tok.Expiry, tok.KeyName, tok.ExpiresAt())

	_, err = sas.Parse("SharedAccessSignature sr=h&sig=x&se=tomorrow")
	fmt.Println(err)
	var pe *sas.ParseError
	fmt.Println(errors.As(err, &pe), pe.Field, errors.Is(err, sas.ErrMalformed))
	// Output:
	// uri 12345 encode('Me') 1970-01-01 03:25:45 +0000 UTC
	// sas: malformed token: field se: not a decimal number ("tomorrow"); want seconds since 1970-01-01T00:00:00Z
	// true se true
}

func ExampleToken_Verify() {
	key, _ := sas.DecodeKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	host := "contoso.azure-devices.net"
	expiry := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := expiry.Add(-time.Hour)

	// A device signed the lower-cased resource, then sent the original one.
	wire := sas.EncodeResource(sas.DeviceResource(host, "MyDevice01"))
	signed := sas.Sign("contoso.azure-devices.net%2fdevices%2fmydevice01", "", key, expiry)
	tok := sas.Token{Resource: wire, Signature: signed.Signature, Expiry: signed.Expiry}

	err := tok.Verify(key, now, sas.WithAudience(sas.DeviceResource(host, "MyDevice01")))
	var r *sas.Rejection
	if errors.As(err, &r) {
		fmt.Println(r.Reason, errors.Is(err, sas.ErrSignature))
		fmt.Println(r.Hints[0])
	}

	// A good token for dev1 presented on dev10's connection.
	good := sas.Sign(sas.EncodeResource(sas.DeviceResource(host, "dev1")), "", key, expiry)
	fmt.Println(good.Verify(key, now, sas.WithAudience(sas.DeviceResource(host, "dev10"))))
	// Output:
	// signature-mismatch true
	// the signature was computed over the lower-cased sr "contoso.azure-devices.net%2fdevices%2fmydevice01", but the token carries sr=contoso.azure-devices.net%2Fdevices%2FMyDevice01: sign exactly the sr you send
	// sas: scope-mismatch: token is for devices/dev1 but the connection is for devices/dev10
}

func ExampleParseConnectionString() {
	cs, err := sas.ParseConnectionString("HostName=contoso.azure-devices.net;DeviceId=MyDevice01;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		panic(err)
	}
	fmt.Println(cs.Kind(), cs.Resource())
	fmt.Println(cs.Redacted())
	tok, _ := cs.Token(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	fmt.Println(tok.Signature)

	_, err = sas.ParseConnectionString("HostName=contoso.azure-devices.net;ModuleId=m1;SharedAccessKey=AAAA")
	fmt.Println(err)
	// Output:
	// device contoso.azure-devices.net/devices/MyDevice01
	// HostName=contoso.azure-devices.net;DeviceId=MyDevice01;SharedAccessKey=<redacted>
	// dpCx63CkFH4MIH+L+fb5N6i6du+8r74HUI3+7Gfg1Wc=
	// sas: bad connection string: ModuleId requires DeviceId
}

func ExampleDeriveDeviceKey() {
	group, _ := sas.DecodeKey("8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==")
	derived := sas.DeriveDeviceKey(group, "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6")
	fmt.Println(base64.StdEncoding.EncodeToString(derived))
	// Output:
	// Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=
}
