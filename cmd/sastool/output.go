package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// writeJSON prints v as one indented JSON object. HTML escaping is off: tokens contain '&'.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// field is one "name: value" line of a human-readable view.
type field struct{ name, value string }

// writeFields prints fields with aligned values.
func writeFields(w io.Writer, fields []field) error {
	width := 0
	for _, f := range fields {
		width = max(width, len(f.name))
	}
	var b strings.Builder
	for _, f := range fields {
		fmt.Fprintf(&b, "%-*s  %s\n", width+1, f.name+":", f.value)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shellQuote quotes s for POSIX shells: safe words are left alone, anything else is put in
// single quotes (a quote inside becomes '\”).
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
