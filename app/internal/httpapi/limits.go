package httpapi

import (
	"context"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Limits bound what anonymous traffic may cost. Zero fields are off (handler
// tests); aircraftd sets every one from its configuration.
type Limits struct {
	// PerSecond and Burst are each client address's token bucket (IPv6:
	// each /64) on every request but POSTs, health and ready; Clients is
	// how many addresses are remembered, the least recently seen forgotten
	// first, so the limiter's memory is bounded whatever the addresses.
	PerSecond, Burst, Clients int
	// InFlight is the most requests (but POSTs, health and ready) served at
	// once; more answer 503 with Retry-After.
	InFlight int
	// PageMax is the most items of a list's page: a larger limit is cut.
	PageMax int
	// ReadTimeout is the deadline of every request but POSTs.
	ReadTimeout time.Duration
}

// unlimited are the paths the rate limiter lets through: a load balancer's
// checks, which cost the same whatever the traffic (Readiness).
var unlimited = map[string]bool{"/api/v1/health": true, "/api/v1/ready": true}

// rateLimit answers 429 with Retry-After to a client address that sends
// more than its share. The address is gin's ClientIP: X-Forwarded-For only
// from TRUSTED_PROXIES, else the peer's.
func rateLimit(l Limits) gin.HandlerFunc {
	if l.PerSecond <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	lim := newClientLimiter(l)
	retry := strconv.Itoa(int(math.Ceil(1 / float64(l.PerSecond))))
	return func(c *gin.Context) {
		if c.Request.Method == http.MethodPost || unlimited[c.Request.URL.Path] || lim.allow(c.ClientIP()) {
			c.Next()
			return
		}
		c.Header("Retry-After", retry)
		writeProblem(c, http.StatusTooManyRequests, "too many requests from your address; retry after "+retry+" s")
	}
}

// clientLimiter is a token bucket (golang.org/x/time/rate) per client
// address, in an LRU cache of bounded size (hashicorp/golang-lru).
type clientLimiter struct {
	every   rate.Limit
	burst   int
	mu      sync.Mutex // makes get-or-add one step
	clients *lru.Cache[netip.Prefix, *rate.Limiter]
}

func newClientLimiter(l Limits) *clientLimiter {
	c, err := lru.New[netip.Prefix, *rate.Limiter](max(l.Clients, 1))
	if err != nil {
		panic("httpapi: rate limiter: " + err.Error()) // only for a size < 1
	}
	return &clientLimiter{every: rate.Limit(l.PerSecond), burst: max(l.Burst, 1), clients: c}
}

// allow reports whether the client at ip may send a request now.
func (l *clientLimiter) allow(ip string) bool {
	key := clientKey(ip)
	l.mu.Lock()
	lim, ok := l.clients.Get(key)
	if !ok {
		lim = rate.NewLimiter(l.every, l.burst)
		l.clients.Add(key, lim)
	}
	l.mu.Unlock()
	return lim.Allow()
}

// clientKey is the address's /32 (IPv4) or /64 (IPv6: one client is handed a
// whole /64, and could otherwise take a new address per request).
func clientKey(ip string) netip.Prefix {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{} // not an address: all such share one bucket
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// inFlight answers 503 with Retry-After to a request (but POSTs, health and
// ready) that comes while max others are being served: the reads' goroutines
// and memory are bounded whatever the number of clients.
func inFlight(max int) gin.HandlerFunc {
	if max <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	slots := make(chan struct{}, max)
	return func(c *gin.Context) {
		if c.Request.Method == http.MethodPost || unlimited[c.Request.URL.Path] {
			c.Next()
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			c.Next()
		default:
			c.Header("Retry-After", "1")
			writeProblem(c, http.StatusServiceUnavailable, "too many requests being served; retry after 1 s")
		}
	}
}

// readDeadline bounds the time of every request but POSTs (which run the
// work and have their own bounds).
func readDeadline(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		if d <= 0 || c.Request.Method == http.MethodPost {
			c.Next()
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}
