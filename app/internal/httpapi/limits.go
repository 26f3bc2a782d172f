package httpapi

import (
	"net/http"
	"time"
)

// Limits bound what anonymous traffic may cost. Zero fields are off (handler tests); aircraftd sets every one from its
// configuration.
type Limits struct {
	// PerSecond and Burst are each client address's token bucket (IPv6: each /64) on every request but POSTs, health
	// and ready; Clients is how many addresses are remembered, the least recently seen forgotten first, so the
	// limiter's memory is bounded whatever the addresses.
	PerSecond, Burst, Clients int
	// InFlight is the most requests (but POSTs, health and ready) served at once; more answer 503 with Retry-After.
	InFlight int
	// PageMax is the most items of a list's page: a larger limit is cut.
	PageMax int
	// ReadTimeout is the deadline of every request but POSTs.
	ReadTimeout time.Duration
}

// unlimited are the paths that no read bound applies to: a load balancer's checks, which cost the same whatever the
// traffic (Readiness).
var unlimited = map[string]bool{"/api/v1/health": true, "/api/v1/ready": true}

// unbounded reports whether r is outside the read bounds: a POST (it runs the work, which has bounds of its own) or one
// of the unlimited paths.
func unbounded(r *http.Request) bool {
	return r.Method == http.MethodPost || unlimited[r.URL.Path]
}

// isPost reports whether r is a POST: the read deadline applies to all else.
func isPost(r *http.Request) bool { return r.Method == http.MethodPost }
