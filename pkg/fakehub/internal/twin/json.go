package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"
)

// The twin documents are kept as ordered JSON trees so that views keep the order in which
// properties were first set (as the hub does) and so that $version and $metadata can be placed
// exactly. A value is one of: nil (JSON null), bool, json.Number, string, []any or *object.

// stamp is the metadata of a property: when it was last set, and the section's version then.
type stamp struct {
	at      time.Time
	version int64
}

type object struct {
	keys  []string
	vals  map[string]any
	stamp map[string]stamp
}

func newObject() *object {
	return &object{vals: make(map[string]any), stamp: make(map[string]stamp)}
}

func (o *object) set(k string, v any, st stamp) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
	o.stamp[k] = st
}

func (o *object) del(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	delete(o.stamp, k)
	o.keys = slices.DeleteFunc(o.keys, func(x string) bool { return x == k })
}

func (o *object) clone() *object {
	c := &object{keys: slices.Clone(o.keys), vals: make(map[string]any, len(o.vals)), stamp: make(map[string]stamp, len(o.stamp))}
	for k, v := range o.vals {
		c.vals[k] = cloneValue(v)
		c.stamp[k] = o.stamp[k]
	}
	return c
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case *object:
		return v.clone()
	case []any:
		c := make([]any, len(v))
		for i, x := range v {
			c[i] = cloneValue(x)
		}
		return c
	}
	return v
}

// stampAll gives v and everything below it the stamp st (a value set as a whole).
func stampAll(v any, st stamp) {
	if o, ok := v.(*object); ok {
		for _, k := range o.keys {
			o.stamp[k] = st
			stampAll(o.vals[k], st)
		}
	}
}

// errNotObject is returned by decodeObject for valid JSON that is not an object.
var errNotObject = errors.New("not a JSON object")

// decodeObject parses data, which must be exactly one JSON object. Duplicate keys keep their
// first position and their last value.
func decodeObject(data []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty document, expected a JSON object")
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	o, ok := v.(*object)
	if !ok {
		return nil, errNotObject
	}
	return o, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			o := newObject()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o.set(kt.(string), v, stamp{})
			}
			_, err := dec.Token() // '}'
			return o, err
		}
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ']'
		return a, err
	}
	return tok, nil // nil, bool, json.Number, string
}

// mergePatch applies patch to target as RFC 7386 says: null deletes, objects merge
// recursively, anything else replaces. Every property the patch sets gets the stamp st.
func mergePatch(target, patch *object, st stamp) {
	for _, k := range patch.keys {
		switch pv := patch.vals[k].(type) {
		case nil:
			target.del(k)
		case *object:
			to, ok := target.vals[k].(*object)
			if !ok {
				to = newObject()
			}
			mergePatch(to, pv, st)
			target.set(k, to, st)
		default:
			target.set(k, cloneValue(pv), st)
		}
	}
}

// stripReserved removes the top-level "$version" and "$metadata" a service may send back with
// a document it read.
func stripReserved(o *object) {
	o.del("$version")
	o.del("$metadata")
}

// appendValue appends v as compact JSON.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		if v {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case json.Number:
		return append(b, v...)
	case string:
		return appendString(b, v)
	case []any:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, x)
		}
		return append(b, ']')
	case *object:
		b = append(b, '{')
		b = appendMembers(b, v)
		return append(b, '}')
	}
	panic(fmt.Sprintf("twin: unexpected JSON value %T", v))
}

// appendMembers appends the members of o, comma-separated, without braces.
func appendMembers(b []byte, o *object) []byte {
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, o.vals[k])
	}
	return b
}

// appendString appends s as a JSON string, escaping only what JSON requires.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// docSize is what a section counts towards its size limit: its compact JSON, without $version
// and $metadata.
func docSize(o *object) int { return len(appendValue(nil, o)) }
