package sas

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	want := Token{Resource: "h%2Fdevices%2Fd", Signature: "ab+/cd==", Expiry: 1893456000}
	tests := []struct {
		name string
		in   string
		want Token
	}{
		{"sdk-order", "SharedAccessSignature sr=h%2Fdevices%2Fd&sig=ab%2B%2Fcd%3D%3D&se=1893456000", want},
		{"docs-order", "SharedAccessSignature sig=ab%2B%2Fcd%3D%3D&se=1893456000&sr=h%2Fdevices%2Fd", want},
		{"field-names-any-case", "SharedAccessSignature SR=h%2Fdevices%2Fd&Sig=ab%2B%2Fcd%3D%3D&sE=1893456000", want},
		{"trailing-ampersand", "SharedAccessSignature sr=h%2Fdevices%2Fd&sig=ab%2B%2Fcd%3D%3D&se=1893456000&", want},
		{"sig-unescaped-slash-and-equals", "SharedAccessSignature sr=h%2Fdevices%2Fd&sig=ab%2B/cd==&se=1893456000", want},
		{"tab-separator", "SharedAccessSignature\tsr=h%2Fdevices%2Fd&sig=ab%2B%2Fcd%3D%3D&se=1893456000", want},
		{"sig-plus-becomes-space", "SharedAccessSignature sr=h%2Fdevices%2Fd&sig=ab+/cd==&se=1893456000",
			Token{Resource: "h%2Fdevices%2Fd", Signature: "ab /cd==", Expiry: 1893456000}},
		{"sr-kept-raw-lower-escapes", "SharedAccessSignature sr=h%2fdevices%2fD&sig=x&se=1",
			Token{Resource: "h%2fdevices%2fD", Signature: "x", Expiry: 1}},
		{"sr-unencoded", "SharedAccessSignature sr=h/devices/d&sig=x&se=0",
			Token{Resource: "h/devices/d", Signature: "x", Expiry: 0}},
		{"node-order-with-skn", "SharedAccessSignature sr=h&sig=x&skn=iothubowner&se=5",
			Token{Resource: "h", Signature: "x", Expiry: 5, KeyName: "iothubowner"}},
		{"skn-url-decoded", "SharedAccessSignature sr=h&sig=x&se=5&skn=encode%28%27Me%27%29",
			Token{Resource: "h", Signature: "x", Expiry: 5, KeyName: "encode('Me')"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) = %v, want nil error", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Errorf("Parse(%q) = %v, %v, want %v", got.String(), again, err, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		field   string
		problem string // substring
	}{
		{"empty", "", "", "empty token"},
		{"wrong-prefix-case", "sharedaccesssignature sr=h&sig=x&se=1", "", "case-sensitive"},
		{"missing-prefix", "sr=h&sig=x&se=1", "", "starts with its fields"},
		{"other-prefix", "Bearer abc", "", "wrong prefix"},
		{"prefix-only", "SharedAccessSignature", "", "nothing after"},
		{"prefix-glued", "SharedAccessSignaturesr=h&sig=x&se=1", "", "exactly one space"},
		{"two-spaces", "SharedAccessSignature  sr=h&sig=x&se=1", "", "exactly one space"},
		{"space-inside", "SharedAccessSignature sr=h&sig=x &se=1", "", "whitespace inside"},
		{"prefix-and-space-only", "SharedAccessSignature ", "", "no fields"},
		{"missing-sr", "SharedAccessSignature sig=x&se=1", "sr", "missing"},
		{"missing-sig", "SharedAccessSignature sr=h&se=1", "sig", "missing"},
		{"missing-se", "SharedAccessSignature sr=h&sig=x", "se", "missing"},
		{"duplicated-sr", "SharedAccessSignature sr=h&sr=h&sig=x&se=1", "sr", "duplicated"},
		{"duplicated-any-case", "SharedAccessSignature sr=h&SIG=x&sig=x&se=1", "sig", "duplicated"},
		{"empty-sr", "SharedAccessSignature sr=&sig=x&se=1", "sr", "empty"},
		{"empty-sig", "SharedAccessSignature sr=h&sig=&se=1", "sig", "empty"},
		{"empty-skn", "SharedAccessSignature sr=h&sig=x&se=1&skn=", "skn", "empty"},
		{"se-not-numeric", "SharedAccessSignature sr=h&sig=x&se=soon", "se", "not a decimal number"},
		{"se-float", "SharedAccessSignature sr=h&sig=x&se=1.5", "se", "not a decimal number"},
		{"se-plus-sign", "SharedAccessSignature sr=h&sig=x&se=+5", "se", "not a decimal number"},
		{"se-negative", "SharedAccessSignature sr=h&sig=x&se=-5", "se", "negative"},
		{"se-leading-zero", "SharedAccessSignature sr=h&sig=x&se=05", "se", "leading zeros"},
		{"se-overflow", "SharedAccessSignature sr=h&sig=x&se=99999999999999999999", "se", "out of range"},
		{"bad-escape-sig", "SharedAccessSignature sr=h&sig=a%zz&se=1", "sig", "bad percent-encoding"},
		{"bad-escape-sr", "SharedAccessSignature sr=h%2&sig=x&se=1", "sr", "bad percent-encoding"},
		{"bad-escape-skn", "SharedAccessSignature sr=h&sig=x&se=1&skn=%G0", "skn", "bad percent-encoding"},
		{"unknown-field", "SharedAccessSignature sr=h&sig=x&se=1&sk=abc", `"sk"`, "unknown field"},
		{"no-equals", "SharedAccessSignature sr=h&sig=x&se=1&skn", `"skn"`, "no '='"},
		{"empty-name", "SharedAccessSignature sr=h&sig=x&se=1&=v", "", "empty name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) = %v, want *ParseError", tt.in, err)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse(%q) error does not wrap ErrMalformed", tt.in)
			}
			if pe.Field != tt.field || !strings.Contains(pe.Problem, tt.problem) {
				t.Errorf("Parse(%q) = %v, want field %q and problem containing %q", tt.in, err, tt.field, tt.problem)
			}
		})
	}
}

func TestParseErrorsHideSignature(t *testing.T) {
	const secret = "S3cr3tSignatureValueThatMustNotLeak"
	for _, in := range []string{
		secret,
		"SharedAccessSignature sig=" + secret,
		"SharedAccessSignature sig=" + secret + "&sig=" + secret + "&sr=h&se=1",
		"SharedAccessSignature sr=h&se=1&" + secret + "=" + secret,
		"SharedAccessSignature sr=h&se=1&" + secret,
		"SharedAccessSignature sr=h&se=x&sig=" + secret + " tail",
	} {
		_, err := Parse(in)
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("Parse(%q) = %v, want an error without the signature", in, err)
		}
	}
}

func TestTokenString(t *testing.T) {
	tok := Token{Resource: "h%2Fdevices%2Fd", Signature: "a+b/c=", Expiry: 7, KeyName: "my policy"}
	want := "SharedAccessSignature sr=h%2Fdevices%2Fd&sig=a%2Bb%2Fc%3D&se=7&skn=my+policy"
	if got := tok.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestExpiresAtAndPlainResource(t *testing.T) {
	tok := Token{Resource: "h%2Fdevices%2Fa%2Bb+c", Expiry: 1893456000}
	if got, want := tok.ExpiresAt(), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("ExpiresAt() = %v, want %v", got, want)
	}
	got, err := tok.PlainResource()
	if err != nil || got != "h/devices/a+b+c" {
		t.Errorf("PlainResource() = %q, %v, want %q", got, err, "h/devices/a+b+c")
	}
	if _, err := (Token{Resource: "h%zz"}).PlainResource(); !errors.Is(err, ErrMalformed) {
		t.Errorf("PlainResource(bad escape) = %v, want ErrMalformed", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"SharedAccessSignature sr=h%2Fdevices%2Fd&sig=ab%2B%2Fcd%3D%3D&se=1893456000",
		"SharedAccessSignature sig=x&se=1&sr=h&skn=iothubowner",
		"SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D&skn=encode%28%27Me%27%29&se=12345",
		"SharedAccessSignature sr=a+b&sig=a+b&se=0&",
		"SharedAccessSignature SR=%41&SIG=%2b&SE=9223372036854775807",
		"sharedaccesssignature x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %v, want an error wrapping ErrMalformed", s, err)
			}
			return
		}
		if _, err := tok.PlainResource(); err != nil {
			t.Fatalf("Parse(%q) accepted sr %q but PlainResource() = %v", s, tok.Resource, err)
		}
		again, err := Parse(tok.String())
		if err != nil {
			t.Fatalf("Parse(%q) (from %q) = %v, want nil error", tok.String(), s, err)
		}
		if again != tok {
			t.Fatalf("Parse(String()) = %#v, want %#v", again, tok)
		}
	})
}
