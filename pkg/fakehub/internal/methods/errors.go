package methods

import "errors"

// ErrClosed is the cause of the 503001 errors of Invoke after Close.
var ErrClosed = errors.New("methods: registry closed")
