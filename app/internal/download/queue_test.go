package download

import (
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/lanes"
)

// The queue hands out files in order, tells the taker of the last one of a closed queue, and lets waiting workers go
// when closed.
func TestQueue(t *testing.T) {
	q := newQueue()
	q.push(lanes.Record{Key: "a"})
	q.push(lanes.Record{Key: "b"})
	if r, ok, last := q.pop(); r.Key != "a" || !ok || last {
		t.Errorf("pop = %s %v %v, want a, not last (the queue is open)", r.Key, ok, last)
	}
	if q.close() {
		t.Error("close reported empty with b waiting")
	}
	if r, ok, last := q.pop(); r.Key != "b" || !ok || !last {
		t.Errorf("pop = %s %v %v, want b, the last", r.Key, ok, last)
	}
	done := make(chan bool)
	q2 := newQueue()
	go func() { _, ok, _ := q2.pop(); done <- ok }()
	time.Sleep(10 * time.Millisecond)
	if !q2.close() {
		t.Error("close of an empty queue reported files waiting")
	}
	if <-done {
		t.Error("a waiting pop got a file from an empty closed queue")
	}
}
