package twin

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Limits of twin documents (learn.microsoft.com, "Understand and use device twins in IoT Hub",
// and edgeHub's ReportedPropertiesValidator, whose constants are "taken from IoTHub").
const (
	MaxKeySize        = 1024              // bytes of UTF-8 per property name
	MaxStringSize     = 4096              // bytes of UTF-8 per string value
	MaxDepth          = 10                // nesting of objects and arrays below the section root
	MaxSafeInteger    = 4503599627370495  // 2^52-1
	MinSafeInteger    = -4503599627370496 // -2^52
	MaxPropertiesSize = 32 * 1024         // desired, reported: compact JSON without $version/$metadata
	MaxTagsSize       = 8 * 1024          // tags: compact JSON
)

const (
	forbiddenKeyRunes  = ".$ " // besides control characters and white space
	edgeHubForbidden   = '#'   // edgeHub also refuses '#' (reserved for the service side)
	rootPathForMessage = ""
)

// validator checks a patch or document against the limits.
type validator struct {
	rejectHash bool
}

// validate checks every key and value of o (a section root, depth 0). inArray reports that o is
// an element of an array, where null values are not allowed either.
func (v validator) validate(o *object, path string, depth int, inArray bool) error {
	if depth > MaxDepth {
		return fmt.Errorf("%s is nested %d levels deep, more than %d", describe(path), depth, MaxDepth)
	}
	for _, k := range o.keys {
		p := join(path, k)
		if err := v.checkKey(k, path); err != nil {
			return err
		}
		val := o.vals[k]
		if val == nil && inArray {
			return fmt.Errorf("%s is null inside an array", describe(p))
		}
		if err := v.checkValue(val, p, depth+1, inArray); err != nil {
			return err
		}
	}
	return nil
}

func (v validator) checkValue(val any, path string, depth int, inArray bool) error {
	switch val := val.(type) {
	case *object:
		return v.validate(val, path, depth, inArray)
	case []any:
		if depth > MaxDepth {
			return fmt.Errorf("%s is nested %d levels deep, more than %d", describe(path), depth, MaxDepth)
		}
		for i, el := range val {
			p := fmt.Sprintf("%s[%d]", path, i)
			if el == nil {
				return fmt.Errorf("%s: arrays cannot contain null", describe(p))
			}
			if err := v.checkValue(el, p, depth+1, true); err != nil {
				return err
			}
		}
	case string:
		if len(val) > MaxStringSize {
			return fmt.Errorf("%s is a string of %d bytes, more than %d", describe(path), len(val), MaxStringSize)
		}
	case json.Number:
		if !strings.ContainsAny(string(val), ".eE") {
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || n > MaxSafeInteger || n < MinSafeInteger {
				return fmt.Errorf("%s is %s, outside %d..%d", describe(path), val, int64(MinSafeInteger), int64(MaxSafeInteger))
			}
		}
	}
	return nil
}

func (v validator) checkKey(k, parent string) error {
	if len(k) > MaxKeySize {
		return fmt.Errorf("a property name in %s is %d bytes long, more than %d", describe(parent), len(k), MaxKeySize)
	}
	for _, r := range k {
		switch {
		case unicode.IsControl(r):
			return fmt.Errorf("property name %q contains the control character %U", k, r)
		case strings.ContainsRune(forbiddenKeyRunes, r) || unicode.IsSpace(r):
			return fmt.Errorf("property name %q contains %q (names cannot contain '.', '$' or spaces)", k, r)
		case v.rejectHash && r == edgeHubForbidden:
			return fmt.Errorf("property name %q contains '#'", k)
		}
	}
	return nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func describe(path string) string {
	if path == rootPathForMessage {
		return "the document"
	}
	return fmt.Sprintf("property %q", path)
}
