package device

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"
)

func TestLossCause(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Client{s: &settings{Config: Config{Now: func() time.Time { return now }, MaxReconnectInterval: 30 * time.Second}}}
	lost := func(lived time.Duration, tokenLeft time.Duration) *session {
		s := &session{upAt: now.Add(-lived)}
		s.expiry.Store(now.Add(tokenLeft).Unix())
		return s
	}
	eof := fmt.Errorf("paho: reading: %w", io.EOF)
	for _, step := range []struct {
		name      string
		sess      *session
		err       error
		wait      time.Duration
		replaced  bool
		wantCause error
	}{
		{"first-hub-close", lost(time.Hour, time.Hour), eof, time.Second, true, io.EOF},
		{"again-shortly-after", lost(50*time.Millisecond, time.Hour), io.ErrUnexpectedEOF, 2 * time.Second, true, io.ErrUnexpectedEOF},
		{"and-again", lost(time.Second, time.Hour), eof, 4 * time.Second, true, io.EOF},
		{"after-a-stable-minute", lost(2*time.Minute, time.Hour), eof, time.Second, true, io.EOF},
		{"reset-reconnects-at-once", lost(time.Second, time.Hour), syscall.ECONNRESET, 0, false, syscall.ECONNRESET},
		{"run-restarts-after-reset", lost(time.Second, time.Hour), eof, time.Second, true, io.EOF},
		{"expired-token-is-not-a-takeover", lost(time.Second, -time.Second), eof, 0, false, io.EOF},
	} {
		wait, cause := c.lossCause(step.sess, step.err)
		if wait != step.wait || errors.Is(cause, ErrReplaced) != step.replaced || !errors.Is(cause, step.wantCause) {
			t.Errorf("%s: lossCause(%v) = %v, %v; want %v, replaced=%v, wrapping %v", step.name, step.err, wait, cause, step.wait, step.replaced, step.wantCause)
		}
	}
}

func TestReplacedDelay(t *testing.T) {
	for _, tc := range []struct {
		n    int
		max  time.Duration
		want time.Duration
	}{
		{1, 30 * time.Second, time.Second},
		{2, 30 * time.Second, 2 * time.Second},
		{5, 30 * time.Second, 16 * time.Second},
		{6, 30 * time.Second, 30 * time.Second},
		{100, 30 * time.Second, 30 * time.Second},
		{1, 100 * time.Millisecond, 100 * time.Millisecond},
	} {
		if got := replacedDelay(tc.n, tc.max); got != tc.want {
			t.Errorf("replacedDelay(%d, %v) = %v, want %v", tc.n, tc.max, got, tc.want)
		}
	}
}
