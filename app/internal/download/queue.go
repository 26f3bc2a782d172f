package download

import (
	"sync"

	"github.com/aircraftdata/platform/app/internal/lanes"
)

// queue is the files waiting for a worker: unbounded, so that reading the hour never waits for the workers (a cursor
// left waiting would time out on the server).
type queue struct {
	mu     sync.Mutex
	cond   sync.Cond
	items  []lanes.Record
	closed bool
}

func newQueue() *queue {
	q := &queue{}
	q.cond.L = &q.mu
	return q
}

func (q *queue) push(r lanes.Record) {
	q.mu.Lock()
	q.items = append(q.items, r)
	q.mu.Unlock()
	q.cond.Signal()
}

// close says no more files will come: waiting workers return. It reports whether every file was taken already.
func (q *queue) close() (empty bool) {
	q.mu.Lock()
	q.closed = true
	empty = len(q.items) == 0
	q.mu.Unlock()
	q.cond.Broadcast()
	return empty
}

// pop waits for the next file: ok is false once the queue is closed and empty; last is true for the last file of a
// closed queue.
func (q *queue) pop() (r lanes.Record, ok, last bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return r, false, false
	}
	r, q.items = q.items[0], q.items[1:]
	return r, true, q.closed && len(q.items) == 0
}
