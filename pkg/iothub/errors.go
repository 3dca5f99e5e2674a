package iothub

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrClientID is wrapped by errors about client IDs and device or module IDs.
var ErrClientID = errors.New("iothub: invalid client ID")

// ErrUserName is wrapped by errors from ParseUserName.
var ErrUserName = errors.New("iothub: malformed user name")

// ErrProperties is wrapped by errors from ParseProperties (and by user-name and topic errors
// whose cause is a malformed property bag).
var ErrProperties = errors.New("iothub: malformed property bag")

// ErrTopic is wrapped by every *TopicError: a topic name or filter that does not parse, or that
// the hub would not allow this identity to use.
var ErrTopic = errors.New("iothub: topic not allowed")

// ParseError reports a malformed client ID, device or module ID, user name or property bag.
// It unwraps to ErrClientID, ErrUserName or ErrProperties.
//
// Input is kept as received, for callers; Error does not echo it whole (see Error), because
// a client may send a secret in the wrong field (the SAS token as the MQTT user name). Do not
// log Input itself above Debug.
type ParseError struct {
	What    string // what was being parsed: "client ID", "device ID", "user name", "property bag"
	Input   string // the input as received (may be a misplaced secret: see above)
	Problem string // one human sentence saying what was expected
	Err     error  // the sentinel
}

// Error returns `iothub: invalid <what> "<input>": <problem>`. An input longer than
// MaxEchoBytes is cut there and followed by its length ("…(300 bytes)"). An input that looks
// like a secret (it contains "sig=", "SharedAccessSignature" or "SharedAccessKey=", in any
// case, or percent-encoded) is not shown at all, and neither is the problem, which may quote
// parts of it (the same holds when the problem, which may decode the input, looks like one).
func (e *ParseError) Error() string { return "iothub: invalid " + e.detail() }

// detail returns the problem prefixed with what was parsed, for embedding in another error.
func (e *ParseError) detail() string {
	if looksSecret(e.Input) || looksSecret(e.Problem) {
		advice := "secrets belong in the MQTT password only"
		if e.What != "property bag" {
			advice += " (were the user name and password swapped?)"
		}
		return e.What + " " + redactedEcho(e.Input) + ": " + advice
	}
	return e.What + " " + echo(e.Input) + ": " + e.Problem
}

// MaxEchoBytes bounds how much of a rejected input (a user name, a client ID, a topic) an
// error message quotes; the rest is replaced by its length.
const MaxEchoBytes = 64

// echo quotes s for an error message, cut at MaxEchoBytes (on a UTF-8 boundary).
func echo(s string) string {
	if len(s) <= MaxEchoBytes {
		return strconv.Quote(s)
	}
	cut := MaxEchoBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// looksSecret reports whether s looks like a SAS token or a connection string with a key,
// perhaps percent-encoded.
func looksSecret(s string) bool {
	l := strings.ToLower(s)
	for _, m := range []string{"sig=", "sig%3d", "sharedaccesssignature", "sharedaccesskey=", "sharedaccesskey%3d"} {
		if strings.Contains(l, m) {
			return true
		}
	}
	return false
}

// redactedEcho stands for an input that looks like a secret.
func redactedEcho(s string) string {
	return "<redacted: looks like a SAS token or connection string, " + strconv.Itoa(len(s)) + " bytes>"
}

// Unwrap returns the sentinel (ErrClientID, ErrUserName or ErrProperties).
func (e *ParseError) Unwrap() error { return e.Err }

// TopicRule is a stable code for the rule a topic broke, for callers that branch on it or
// count it (the prose is in TopicError.Problem).
type TopicRule string

// The rules a *TopicError can name.
const (
	RuleMalformed     TopicRule = "malformed"       // not a well-formed topic of the expected shape
	RuleWildcard      TopicRule = "wildcard"        // '+' or '#' where the hub does not allow it
	RuleUnknownTopic  TopicRule = "unknown-topic"   // not a topic or filter IoT Hub supports
	RuleOtherIdentity TopicRule = "other-identity"  // another device's or module's topic
	RuleDirection     TopicRule = "wrong-direction" // publishing a hub-to-device topic or subscribing to a device-to-hub one
	RuleMissingRID    TopicRule = "missing-rid"     // a twin or method message without $rid
	RuleC2DSubTopic   TopicRule = "c2d-subtopic"    // a C2D filter not ending in /#
)

// TopicError reports a topic name or filter that does not parse or that breaks one of the hub's
// rules. Error() is `topic "x": <problem>`; it unwraps to ErrTopic. Topic is kept as received;
// Error quotes it as ParseError.Error quotes its input (cut at MaxEchoBytes, hidden with its
// problem if it looks like a secret).
type TopicError struct {
	Topic   string
	Problem string
	Rule    TopicRule // stable code for the rule broken (addition to the contract)
}

func (e *TopicError) Error() string {
	if looksSecret(e.Topic) || looksSecret(e.Problem) {
		return "topic " + redactedEcho(e.Topic) + ": breaks rule " + string(e.Rule) + " (the problem is not shown, it may quote the secret)"
	}
	return "topic " + echo(e.Topic) + ": " + e.Problem
}

// Unwrap returns ErrTopic.
func (e *TopicError) Unwrap() error { return ErrTopic }

func topicErr(topic string, rule TopicRule, format string, args ...any) *TopicError {
	return &TopicError{Topic: topic, Problem: fmt.Sprintf(format, args...), Rule: rule}
}
