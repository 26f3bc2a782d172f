package jobs

import "time"

// SetClock sets the registry's clock (a test's skewed instance).
func (r *Registry) SetClock(now func() time.Time) { r.now = now }

// Renew renews the registry's leases now, as its timer does.
func (r *Registry) Renew() { r.renew() }
