package download

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aircraftdata/platform/app/internal/download/fetch"
	"github.com/aircraftdata/platform/app/internal/lanes"
)

// lease is a run's claim on its hour as the run knows it: held until `until` by its own clock, unless lost. Each step
// that changes anything (a file put in place, a batch of statuses) checks it first, so that a run that stalled past its
// lease (a pause of the process, a partition) and may have been taken over writes nothing more once it wakes up. A
// small margin keeps those steps clear of the moment the lease ends.
type lease struct {
	name, owner string
	margin      time.Duration

	mu    sync.Mutex
	until time.Time
	lost  bool
}

// held reports whether the claim is still ours at now.
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

// ErrBusy is the error of Claim when another download still holds the hour once the wait allowed is over.
var ErrBusy = errors.New("another download of this hour is under way")

// firstPoll and maxPoll bound the pauses between two tries at an hour that another instance holds: they double from the
// first to the most.
const (
	firstPoll = 250 * time.Millisecond
	maxPoll   = 5 * time.Second
)

// Claim is an hour claimed for one download: Download runs it, or Release lets it go unrun.
type Claim struct {
	d     *Downloader
	h     lanes.Hour
	lease *lease
	used  atomic.Bool
	gone  sync.Once // the hour let go in this process
}

// Claim claims the hour h for a download. While another download holds it, Claim waits up to Config.Wait if wait is
// set, then fails with ErrBusy (at once if wait is not set). Waiting costs no job slot and no fetching slot. A request
// of this process that holds the hour wakes the waiters of this process when it lets it go; only one of them at a time
// asks the store. An hour held by another instance is asked for again after pauses that double from firstPoll to
// maxPoll.
func (d *Downloader) Claim(ctx context.Context, h lanes.Hour, wait bool) (*Claim, error) {
	var patience time.Duration
	if wait {
		patience = d.cfg.Wait
	}
	name := h.Dir()
	deadline := time.Now().Add(patience)
	timer := time.NewTimer(patience)
	defer timer.Stop()
	for {
		d.mu.Lock()
		held, ok := d.holding[name]
		if !ok {
			d.holding[name] = make(chan struct{})
			d.mu.Unlock()
			break
		}
		d.mu.Unlock()
		select {
		case <-held:
		case <-timer.C:
			return nil, busy(name, patience)
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for another request's download of %s: %w", name, context.Cause(ctx))
		}
	}
	c := &Claim{d: d, h: h}
	owner := fmt.Sprintf("%s-%d", d.id, d.seq.Add(1))
	delay := firstPoll
	for {
		at := d.now().UTC()
		won, err := d.cfg.Claims.Claim(ctx, name, owner, at, d.cfg.Lease)
		if err != nil {
			c.letGo()
			return nil, err
		}
		if won {
			c.lease = &lease{name: name, owner: owner, margin: d.cfg.Lease / 10, until: at.Add(d.cfg.Lease)}
			return c, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			c.letGo()
			return nil, busy(name, patience)
		}
		select {
		case <-ctx.Done():
			c.letGo()
			return nil, fmt.Errorf("waiting for another instance's download of %s: %w", name, context.Cause(ctx))
		case <-time.After(min(fetch.Jitter(delay), left)):
		}
		delay = min(delay*2, maxPoll)
	}
}

func busy(name string, wait time.Duration) error {
	if wait <= 0 {
		return fmt.Errorf("%w: %s", ErrBusy, name)
	}
	return fmt.Errorf("%w: %s, still after %s", ErrBusy, name, wait)
}

// Release lets an unrun claim go (after Download it does nothing).
func (c *Claim) Release() {
	if c.used.Swap(true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), finalWrites)
	defer cancel()
	c.release(ctx)
}

// release lets the claim go in the store, then in this process.
func (c *Claim) release(ctx context.Context) {
	if err := c.d.cfg.Claims.Release(ctx, c.lease.name, c.lease.owner); err != nil {
		c.d.cfg.Log.Warn("releasing the hour's claim (it expires)", "claim", c.lease.name, "owner", c.lease.owner,
			"lease", c.d.cfg.Lease, "error", err)
	}
	c.letGo()
}

// letGo wakes the requests of this process waiting for the hour.
func (c *Claim) letGo() {
	c.gone.Do(func() {
		name := c.h.Dir()
		c.d.mu.Lock()
		close(c.d.holding[name])
		delete(c.d.holding, name)
		c.d.mu.Unlock()
	})
}

// renew renews the run's claim (every Lease/3) while the run makes progress: a byte written or a file ended since the
// last renewal, or no file under way (the run waits for the process's workers, busy with other runs). A run with files
// under way and no progress for Stall (S3 or the disk hung) gives its hour up: its files fail, the claim is let go at
// once, and nothing more of it is put in place. A claim that is no longer ours, or that could not be renewed before its
// lease ran out, is lost: the run stops.
func (r *run) renew() {
	d := r.d
	at := d.now().UTC()
	m := r.p.Report()
	if m.FilesDone != r.lastMark.FilesDone || m.BytesDone != r.lastMark.BytesDone || r.active.Load() == 0 {
		r.lastMark, r.lastMove = m, at
	} else if idle := at.Sub(r.lastMove); idle >= d.cfg.Stall {
		r.giveUp(idle)
		return
	}
	if !r.lease.held(at) {
		r.lose("the lease ran out before it could be renewed")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), d.cfg.Lease/3)
	defer cancel()
	err := d.cfg.Claims.Renew(ctx, r.lease.name, r.lease.owner, at.Add(d.cfg.Lease))
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

// giveUp stops a run that made no progress for idle and lets its hour go at once, without waiting for its files under
// way to return (a write to a hung disk may never return): fenced, they put nothing in place.
func (r *run) giveUp(idle time.Duration) {
	err := fmt.Errorf("no progress for %s (DOWNLOAD_STALL_SECONDS): the hour was given up (%w)",
		idle.Round(time.Second), lanes.ErrClaimLost)
	if r.lease.lose() {
		r.d.cfg.Log.Error("download stopped: no progress", "claim", r.lease.name, "owner", r.lease.owner, "idle", idle)
	}
	r.cancel(err)
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), finalWrites)
		defer cancel()
		r.claim.release(ctx)
	}()
}
