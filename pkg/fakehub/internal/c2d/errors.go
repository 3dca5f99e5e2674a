package c2d

import "github.com/hubkit/hubkit/pkg/iothub"

// ErrNotFound is returned (wrapped) when an operation names a message that is not queued or
// in flight for the identity. It is iothub.ErrNotFound: one sentinel for the hub's "no such
// message".
var ErrNotFound = iothub.ErrNotFound
