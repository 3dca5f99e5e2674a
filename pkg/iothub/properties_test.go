package iothub_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubkit/hubkit/pkg/iothub"
)

func TestParseProperties(t *testing.T) {
	tests := []struct {
		name    string
		bag     string
		want    iothub.Properties
		wantErr string
	}{
		{name: "empty", bag: "", want: nil},
		{name: "value-null-empty", bag: "k1=v1&k2&k3=", want: iothub.Properties{
			{Key: "k1", Value: "v1"}, {Key: "k2", Null: true}, {Key: "k3"}}},
		{name: "dollar-key", bag: "$.mid=1", want: iothub.Properties{{Key: "$.mid", Value: "1"}}},
		{name: "encoded-dollar-key", bag: "%24.mid=1", want: iothub.Properties{{Key: "$.mid", Value: "1"}}},
		{name: "lower-case-escape", bag: "%24.ct=application%2fjson", want: iothub.Properties{{Key: "$.ct", Value: "application/json"}}},
		{name: "plus-stays-plus", bag: "a=1+2", want: iothub.Properties{{Key: "a", Value: "1+2"}}},
		{name: "space-escape", bag: "a=x%20y", want: iothub.Properties{{Key: "a", Value: "x y"}}},
		{name: "equals-in-value", bag: "a=b=c", want: iothub.Properties{{Key: "a", Value: "b=c"}}},
		{name: "unencoded-colon-and-slash", bag: "$.ctime=2021-04-21T11:30:16Z&$.ct=application/json", want: iothub.Properties{
			{Key: "$.ctime", Value: "2021-04-21T11:30:16Z"}, {Key: "$.ct", Value: "application/json"}}},
		{name: "empty-entries-skipped", bag: "a=1&&b=2&", want: iothub.Properties{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}},
		{name: "duplicates-kept-in-order", bag: "a=1&a=2", want: iothub.Properties{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}},
		{name: "utf8", bag: "t=%C3%A9", want: iothub.Properties{{Key: "t", Value: "é"}}},
		{name: "bad-escape-in-value", bag: "$.mid=1&a=%zz", wantErr: `value of key "a": bad percent-escape "%zz"`},
		{name: "truncated-escape", bag: "a=%2", wantErr: `value of key "a": bad percent-escape "%2"`},
		{name: "bad-escape-in-key", bag: "%2x=1", wantErr: `key "%2x": bad percent-escape`},
		{name: "empty-key", bag: "=v", wantErr: `entry "=v" has an empty key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iothub.ParseProperties(tt.bag)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseProperties(%q) error = %v, want it to contain %q", tt.bag, err, tt.wantErr)
				}
				if !errors.Is(err, iothub.ErrProperties) {
					t.Errorf("error %v does not wrap ErrProperties", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseProperties(%q) error = %v", tt.bag, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseProperties(%q) mismatch (-want +got):\n%s", tt.bag, diff)
			}
			again, err := iothub.ParseProperties(got.Encode())
			if err != nil {
				t.Fatalf("ParseProperties(Encode()) = %v", err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("round trip via %q mismatch (-want +got):\n%s", got.Encode(), diff)
			}
		})
	}
}

func TestPropertiesEncode(t *testing.T) {
	tests := []struct {
		name  string
		props iothub.Properties
		want  string
	}{
		{name: "system-keys-as-%24", props: iothub.Properties{{Key: "$.mid", Value: "m1"}, {Key: "$.ct", Value: "application/json"}},
			want: "%24.mid=m1&%24.ct=application%2Fjson"},
		{name: "space-as-%20", props: iothub.Properties{{Key: "a b", Value: "c d"}}, want: "a%20b=c%20d"},
		{name: "plus-escaped", props: iothub.Properties{{Key: "a", Value: "1+1"}}, want: "a=1%2B1"},
		{name: "null-and-empty", props: iothub.Properties{{Key: "n", Null: true, Value: "ignored"}, {Key: "e"}}, want: "n&e="},
		{name: "separators-escaped", props: iothub.Properties{{Key: "k&=", Value: "v&=/#%?"}}, want: "k%26%3D=v%26%3D%2F%23%25%3F"},
		{name: "timestamp", props: iothub.Properties{{Key: "$.ctime", Value: "2021-04-21T11:30:16Z"}}, want: "%24.ctime=2021-04-21T11%3A30%3A16Z"},
		{name: "unreserved-kept", props: iothub.Properties{{Key: "a-b.c_d~e", Value: "AZaz09"}}, want: "a-b.c_d~e=AZaz09"},
		{name: "none", props: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.props.Encode(); got != tt.want {
				t.Errorf("Encode() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPropertiesGetSystemApplication(t *testing.T) {
	props, err := iothub.ParseProperties("%24.mid=m1&%24.cid&$.ct=text%2Fplain&iothub-ack=full&$.cdid=x&color=red&color=blue&n&%24.ctime=2021-04-21T11%3A30%3A16Z")
	if err != nil {
		t.Fatal(err)
	}
	wantSystem := map[string]string{"$.mid": "m1", "$.cid": "", "$.ct": "text/plain", "iothub-ack": "full", "$.ctime": "2021-04-21T11:30:16Z"}
	if diff := cmp.Diff(wantSystem, props.System()); diff != "" {
		t.Errorf("System() mismatch (-want +got):\n%s", diff)
	}
	// Unknown "$." keys are application properties (docs/iothub-behavior.md §4.1); the first value wins.
	wantApp := map[string]string{"$.cdid": "x", "color": "red", "n": ""}
	if diff := cmp.Diff(wantApp, props.Application()); diff != "" {
		t.Errorf("Application() mismatch (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		key, value string
		ok         bool
	}{
		{"$.mid", "m1", true}, {"$.cid", "", true}, {"color", "red", true}, {"missing", "", false}, {"%24.mid", "", false},
	} {
		if v, ok := props.Get(tt.key); v != tt.value || ok != tt.ok {
			t.Errorf("Get(%q) = %q, %v, want %q, %v", tt.key, v, ok, tt.value, tt.ok)
		}
	}
}

func TestPropertiesSize(t *testing.T) {
	// System properties count their values only; application properties count name and value.
	props := iothub.Properties{{Key: "$.mid", Value: "12345"}, {Key: "app", Value: "xy"}, {Key: "nul", Null: true}}
	if got, want := props.Size(), 5+3+2+3; got != want {
		t.Errorf("Size() = %d, want %d", got, want)
	}
}
