package middleware

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

// RateLimit answers 429 with Retry-After to a client address that sends more than perSecond requests (in bursts of
// burst), but for the requests exempt lets through; it remembers clients addresses, the least recently seen forgotten
// first, so its memory is bounded whatever the addresses. The address is gin's ClientIP: X-Forwarded-For only from the
// trusted proxies, else the peer's. perSecond 0 is no limit.
func RateLimit(perSecond, burst, clients int, exempt func(*http.Request) bool) gin.HandlerFunc {
	if perSecond <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	lim := newClientLimiter(perSecond, burst, clients)
	retry := strconv.Itoa(int(math.Ceil(1 / float64(perSecond))))
	return func(c *gin.Context) {
		if exempt(c.Request) || lim.allow(c.ClientIP()) {
			c.Next()
			return
		}
		c.Header("Retry-After", retry)
		Problem(c, http.StatusTooManyRequests, "too many requests from your address; retry after "+retry+" s")
	}
}

// clientLimiter is a token bucket (golang.org/x/time/rate) per client address, in an LRU cache of bounded size
// (hashicorp/golang-lru).
type clientLimiter struct {
	every   rate.Limit
	burst   int
	mu      sync.Mutex // makes get-or-add one step
	clients *lru.Cache[netip.Prefix, *rate.Limiter]
}

func newClientLimiter(perSecond, burst, clients int) *clientLimiter {
	c, err := lru.New[netip.Prefix, *rate.Limiter](max(clients, 1))
	if err != nil {
		panic("middleware: rate limiter: " + err.Error()) // only for a size < 1
	}
	return &clientLimiter{every: rate.Limit(perSecond), burst: max(burst, 1), clients: c}
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

// clientKey is the address's /32 (IPv4) or /64 (IPv6: one client is handed a whole /64, and could otherwise take a new
// address per request).
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

// InFlight answers 503 with Retry-After to a request (but those exempt lets through) that comes while max others are
// being served: their goroutines and memory are bounded whatever the number of clients. max 0 is no bound.
func InFlight(max int, exempt func(*http.Request) bool) gin.HandlerFunc {
	if max <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	slots := make(chan struct{}, max)
	return func(c *gin.Context) {
		if exempt(c.Request) {
			c.Next()
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			c.Next()
		default:
			c.Header("Retry-After", "1")
			Problem(c, http.StatusServiceUnavailable, "too many requests being served; retry after 1 s")
		}
	}
}

// ReadDeadline bounds the time of every request but those exempt lets through. d 0 is no deadline.
func ReadDeadline(d time.Duration, exempt func(*http.Request) bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if d <= 0 || exempt(c.Request) {
			c.Next()
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}
