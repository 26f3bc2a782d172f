package disk

import "sync"

// runTable tells which run of contiguous writes each write of a file belongs to. A file is written as runs: each ranged
// GET writes its range in order (a small file's single GET is one run), several ranges at once, and a range whose body
// broke is written again from its start. The Verifier keeps a CRC per run; the Direct a buffer per run.
//
// A write at off continues the run that ends at off, or restarts the run that started at off, or starts a run. The
// caller owns the run it got until it hands it back with done: only the goroutine writing a range touches its run,
// outside the table's lock.
type runTable[S any] struct {
	mu     sync.Mutex
	byEnd  map[int64]*run[S] // runs not being written, by the offset they continue at
	starts map[int64]*run[S] // every run, by the offset it started at
}

// run is one run and what its user keeps for it.
type run[S any] struct {
	start, end int64
	s          S
}

// next returns the run a write at off belongs to, taken out of the table until done. A new run's state is fresh(off); a
// restarted run's state is passed to restart first.
func (t *runTable[S]) next(off int64, fresh func(off int64) S, restart func(s *S, start int64)) *run[S] {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.byEnd[off]; r != nil { // continues a run
		delete(t.byEnd, off)
		return r
	}
	if r := t.starts[off]; r != nil { // a range retried from its start
		delete(t.byEnd, r.end)
		r.end = off
		restart(&r.s, off)
		return r
	}
	if t.starts == nil {
		t.byEnd, t.starts = map[int64]*run[S]{}, map[int64]*run[S]{}
	}
	r := &run[S]{start: off, end: off, s: fresh(off)}
	t.starts[off] = r
	return r
}

// done hands r back, now ending at end. It reports whether another run already ended there: writes overlapped in a way
// runs cannot describe.
func (t *runTable[S]) done(r *run[S], end int64) (overlap bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.end = end
	other := t.byEnd[end]
	t.byEnd[end] = r
	return other != nil && other != r
}

// all returns every run, in no particular order (once the writes are over).
func (t *runTable[S]) all() []*run[S] {
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := make([]*run[S], 0, len(t.starts))
	for _, r := range t.starts {
		rs = append(rs, r)
	}
	return rs
}
