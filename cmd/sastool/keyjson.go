package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hubkit/hubkit/internal/cli"
)

// identityKeys is the part of IoT Hub's JSON that holds keys: a device or module identity
// (az iot hub device-identity show, module-identity show) or a shared access policy
// (az iot hub policy show).
type identityKeys struct {
	Authentication struct {
		SymmetricKey struct {
			PrimaryKey   string `json:"primaryKey"`
			SecondaryKey string `json:"secondaryKey"`
		} `json:"symmetricKey"`
	} `json:"authentication"`
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// pickKey returns the key text to sign with. A key source that holds IoT Hub identity or
// policy JSON gives its primaryKey, or its secondaryKey with --secondary; any other text is
// the key itself, and --secondary is then a usage error (a plain key is used as given).
func pickKey(text, source string, secondary bool) (string, string, error) {
	if !strings.HasPrefix(text, "{") {
		if secondary {
			return "", "", cli.Usage(fmt.Errorf("--secondary: %s is a plain key, not identity JSON with both keys", source),
				"give --key-file the JSON of 'az iot hub device-identity show' (or module-identity / policy show), or pass the secondary key itself with --key-file")
		}
		return text, source, nil
	}
	var k identityKeys
	if err := json.Unmarshal([]byte(text), &k); err != nil {
		return "", "", fmt.Errorf("%s: looks like JSON but does not parse: %v", source, err)
	}
	primary, second := k.Authentication.SymmetricKey.PrimaryKey, k.Authentication.SymmetricKey.SecondaryKey
	if primary == "" && second == "" {
		primary, second = k.PrimaryKey, k.SecondaryKey
	}
	name, key := "primaryKey", primary
	if secondary {
		name, key = "secondaryKey", second
	}
	if key == "" {
		return "", "", cli.WithHints(fmt.Errorf("%s: the JSON has no %s", source, name),
			"expected authentication.symmetricKey.primaryKey/secondaryKey (device or module identity) or primaryKey/secondaryKey (policy)")
	}
	return key, source + " (" + name + ")", nil
}
