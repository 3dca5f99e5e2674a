package iothub

import (
	"errors"
	"fmt"
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
type ParseError struct {
	What    string // what was being parsed: "client ID", "device ID", "user name", "property bag"
	Input   string // the input as received (none of these carry secrets)
	Problem string // one human sentence saying what was expected
	Err     error  // the sentinel
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("iothub: invalid %s %q: %s", e.What, e.Input, e.Problem)
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
// rules. Error() is `topic "x": <problem>`; it unwraps to ErrTopic.
type TopicError struct {
	Topic   string
	Problem string
	Rule    TopicRule // stable code for the rule broken (addition to the contract)
}

func (e *TopicError) Error() string { return fmt.Sprintf("topic %q: %s", e.Topic, e.Problem) }

// Unwrap returns ErrTopic.
func (e *TopicError) Unwrap() error { return ErrTopic }

func topicErr(topic string, rule TopicRule, format string, args ...any) *TopicError {
	return &TopicError{Topic: topic, Problem: fmt.Sprintf(format, args...), Rule: rule}
}
