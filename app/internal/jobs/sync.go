package jobs

import "context"

// Run runs fn now, in the caller's goroutine, counted against Limits.MaxRunning like a job: it fails with ErrFull when
// that many are running (and ErrStopped after Stop) without calling fn, and while fn runs a Start beyond the limit
// fails. It is for work a request does itself (a synchronous download), which must not get around the cap. fn's context
// ends with ctx, or when the registry stops (with Stop's cause); Stop waits for fn to return. Nothing is kept of the
// run.
func (r *Registry) Run(ctx context.Context, fn func(ctx context.Context) error) error {
	r.mu.Lock()
	switch {
	case r.stopped:
		r.mu.Unlock()
		return ErrStopped
	case r.running >= r.limits.MaxRunning:
		r.mu.Unlock()
		return ErrFull
	}
	r.running++
	r.wg.Add(1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running--
		r.mu.Unlock()
		r.wg.Done()
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(r.ctx, func() { cancel(context.Cause(r.ctx)) })
	defer stop()
	return fn(ctx)
}
