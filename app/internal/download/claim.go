package download

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aircraftdata/platform/app/internal/download/fetch"
	"github.com/aircraftdata/platform/app/internal/lanes"
)

// lease is a run's claim on its hour as the run knows it: held until
// `until` by its own clock, unless lost. Each step that changes anything
// (a file put in place, a batch of statuses) checks it first, so that a
// run that stalled past its lease (a pause of the process, a partition)
// and may have been taken over writes nothing more once it wakes up. A
// small margin keeps those steps clear of the moment the lease ends.
type lease struct {
	name, owner string
	margin      time.Duration

	mu    sync.Mutex
	until time.Time
	lost  bool
}

// held says whether the claim is still ours at now.
func (l *lease) held(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.lost && now.Add(l.margin).Before(l.until)
}

func (l *lease) extend(until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lost && until.After(l.until) {
		l.until = until
	}
}

// lose marks the claim lost; it reports whether it was held until now.
func (l *lease) lose() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := !l.lost
	l.lost = true
	return was
}

// claim claims the hour's folder name for owner, waiting while another
// request holds it.
func (d *Downloader) claim(ctx context.Context, name, owner string) (*lease, error) {
	delay := 50 * time.Millisecond
	for {
		at := d.now().UTC()
		won, err := d.cfg.Store.Claim(ctx, name, owner, at, d.cfg.Lease)
		if err != nil {
			return nil, err
		}
		if won {
			return &lease{name: name, owner: owner, margin: d.cfg.Lease / 10, until: at.Add(d.cfg.Lease)}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for another request's download of %s: %w", name, context.Cause(ctx))
		case <-time.After(fetch.Jitter(delay)):
		}
		delay = min(delay*2, time.Second)
	}
}

// renew renews the run's claim (every Lease/3). A claim that is no longer
// ours, or that could not be renewed before its lease ran out, is lost:
// the run stops.
func (r *run) renew() {
	d := r.d
	at := d.now().UTC()
	if !r.lease.held(at) {
		r.lose("the lease ran out before it could be renewed")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), d.cfg.Lease/3)
	defer cancel()
	err := d.cfg.Store.Renew(ctx, r.lease.name, r.lease.owner, at.Add(d.cfg.Lease))
	switch {
	case err == nil:
		r.lease.extend(at.Add(d.cfg.Lease))
	case errors.Is(err, lanes.ErrClaimLost):
		r.lose("another download took it over")
	default:
		d.cfg.Log.Warn("renewing the hour's claim", "claim", r.lease.name, "owner", r.lease.owner, "error", err)
		if !r.lease.held(d.now()) {
			r.lose("renewals failed until the lease ran out")
		}
	}
}

// lose stops the run: its claim is no longer (surely) its own.
func (r *run) lose(why string) {
	if r.lease.lose() {
		r.d.cfg.Log.Error("download stopped: the hour's claim is lost", "claim", r.lease.name, "owner", r.lease.owner, "why", why)
	}
	r.cancel(lanes.ErrClaimLost)
}
