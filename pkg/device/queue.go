package device

import "sync"

// queue is an unbounded FIFO with a wake-up channel. paho's router goroutine pushes (and must
// never block); one worker goroutine pops.
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	wake  chan struct{} // capacity 1: "something changed"
}

func newQueue[T any]() *queue[T] { return &queue[T]{wake: make(chan struct{}, 1)} }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.poke()
}

// poke wakes the worker without adding an item (e.g. a handler was registered).
func (q *queue[T]) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop removes and returns the oldest item, if any.
func (q *queue[T]) pop() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero T
	if len(q.items) == 0 {
		return zero, false
	}
	v := q.items[0]
	q.items[0] = zero
	q.items = q.items[1:]
	return v, true
}
