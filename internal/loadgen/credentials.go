package loadgen

import (
	"fmt"
	"regexp"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

var idPatternRE = regexp.MustCompile(`^[^%]*%0?[0-9]*d[^%]*$`)

// IDPattern returns the device IDs of a printf pattern with one integer
// verb, such as "load-%d" or "sensor-%05d". It checks that the pattern
// gives distinct, valid device IDs.
func IDPattern(pattern string) (func(i int) iothub.Identity, error) {
	if !idPatternRE.MatchString(pattern) {
		return nil, fmt.Errorf("ID pattern %q: want one integer verb, e.g. load-%%d or dev%%05d", pattern)
	}
	a, b := fmt.Sprintf(pattern, 0), fmt.Sprintf(pattern, 123456)
	for _, id := range []string{a, b} {
		if err := iothub.ValidateID(id); err != nil {
			return nil, fmt.Errorf("ID pattern %q gives %q: %w", pattern, id, err)
		}
	}
	return func(i int) iothub.Identity { return iothub.Identity{DeviceID: fmt.Sprintf(pattern, i)} }, nil
}

// PolicyCredentials signs, for each device, a token scoped to that device
// with a shared access policy key (skn=policy): what a hub's "device"
// policy (DeviceConnect) allows without knowing any device key.
func PolicyCredentials(hostName, policy string, key []byte, ids func(int) iothub.Identity, expiry time.Time) func(int) (Credential, error) {
	return func(i int) (Credential, error) {
		id := ids(i)
		res := sas.EncodeResource(identityResource(hostName, id))
		return Credential{Identity: id, Password: sas.Sign(res, policy, key, expiry).String()}, nil
	}
}

// DeviceKey is one device's identity and key (from a keys file).
type DeviceKey struct {
	Identity iothub.Identity
	Key      []byte
}

// KeyCredentials signs each device's token with its own key: device i is
// keys[i].
func KeyCredentials(hostName string, keys []DeviceKey, expiry time.Time) func(int) (Credential, error) {
	return func(i int) (Credential, error) {
		if i < 0 || i >= len(keys) {
			return Credential{}, fmt.Errorf("device %d: the keys file has %d devices", i, len(keys))
		}
		k := keys[i]
		res := sas.EncodeResource(identityResource(hostName, k.Identity))
		return Credential{Identity: k.Identity, Password: sas.Sign(res, "", k.Key, expiry).String()}, nil
	}
}

// AnonymousCredentials sends no password (for allow-all brokers).
func AnonymousCredentials(ids func(int) iothub.Identity) func(int) (Credential, error) {
	return func(i int) (Credential, error) { return Credential{Identity: ids(i)}, nil }
}

func identityResource(host string, id iothub.Identity) string {
	if id.IsModule() {
		return sas.ModuleResource(host, id.DeviceID, id.ModuleID)
	}
	return sas.DeviceResource(host, id.DeviceID)
}
