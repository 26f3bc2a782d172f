// Package middleware is the middleware of the service's HTTP interface: in gin, request ids, the access log, request
// metrics, recovery from panics, and the bounds on what anonymous reads may cost (a rate limit per client address, the
// requests served at once, a deadline); in huma, the bearer tokens that operations require. Its refusals are RFC 9457
// problems.
package middleware

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gin-gonic/gin"

	"github.com/aircraftdata/platform/app/internal/metrics"
)

type ctxKey struct{}

// RequestID returns the id of the request whose context ctx is.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying the request id id, for work that outlives its request (a job) and logs under its
// id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// WithRequestIDs makes h add the request id (request_id) to each record logged with a request's context (slog's
// …Context methods) that has none of its own: what code below the API logs (a download's failures, with the SDK's
// words) is found by the id the client was told.
func WithRequestIDs(h slog.Handler) slog.Handler { return requestIDs{h} }

type requestIDs struct{ slog.Handler }

func (h requestIDs) Handle(ctx context.Context, r slog.Record) error {
	id, has := RequestID(ctx), false
	r.Attrs(func(a slog.Attr) bool { has = a.Key == "request_id"; return !has })
	if id != "" && !has {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDs) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDs{h.Handler.WithAttrs(as)}
}

func (h requestIDs) WithGroup(name string) slog.Handler { return requestIDs{h.Handler.WithGroup(name)} }

// RequestIDs takes the caller's X-Request-Id (when it is sane) or makes one, echoes it, and puts it in the request's
// context for logs.
func RequestIDs() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader("X-Request-Id")
		if len(id) == 0 || len(id) > 128 || strings.ContainsAny(id, "\r\n") {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), ctxKey{}, id))
		c.Writer.Header().Set("X-Request-Id", id)
		c.Next()
	}
}

// AccessLog writes one structured line per request. Its route is the route template, or metrics.Unmatched: a bounded
// value, which the stack's latency by route is counted from (infra/observability/dashboard.go).
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = metrics.Unmatched
		}
		level := slog.LevelInfo
		if c.Writer.Status() >= 500 {
			level = slog.LevelError
		}
		log.LogAttrs(c.Request.Context(), level, "request",
			slog.String("request_id", RequestID(c.Request.Context())),
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()),
			slog.Int("bytes", c.Writer.Size()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote", c.ClientIP()),
		)
	}
}

// Recovery turns a panic into a 500 problem, logged with the request id, never a stack trace to the client.
func Recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				id := RequestID(c.Request.Context())
				log.Error("panic", "request_id", id, "panic", v)
				Problem(c, http.StatusInternalServerError, "internal error (request id "+id+")")
			}
		}()
		c.Next()
	}
}

// writeProblem writes an RFC 9457 problem for requests that never reach huma.
func Problem(c *gin.Context, status int, detail string) {
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(status, &huma.ErrorModel{Title: http.StatusText(status), Status: status, Detail: detail})
}
