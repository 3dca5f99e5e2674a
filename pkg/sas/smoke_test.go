package sas

import (
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	key, _ := DecodeKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	tok := Sign("contoso.azure-devices.net%2Fdevices%2FMyDevice01", "", key, time.Unix(1893456000, 0))
	if tok.Signature != "dpCx63CkFH4MIH+L+fb5N6i6du+8r74HUI3+7Gfg1Wc=" {
		t.Fatal(tok.Signature)
	}
	p, err := Parse(tok.String())
	if err != nil || p != tok {
		t.Fatal(p, err)
	}
	if err := p.Verify(key, time.Unix(1893456000, 0), WithAudience("contoso.azure-devices.net/devices/MyDevice01")); err != nil {
		t.Fatal(err)
	}
}
