package sas

import (
	"fmt"
	"time"
)

func (t Token) signatureRejection(key []byte, now time.Time, c *verifyConfig) *Rejection {
	detail := fmt.Sprintf("sig does not match the key for %s", t.Resource)
	r := Reject(ReasonSignatureMismatch, detail)
	return r
}

func expiryHints(t Token, now time.Time) []string { return nil }

func scopeHints(tokenPlain, audience string) []string { return nil }
