package httpapi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gin-gonic/gin"
)

type ctxKey struct{}

// RequestID returns the id of the request being served by ctx's handler.
func RequestID(c interface{ Value(any) any }) string {
	id, _ := c.Value(ctxKey{}).(string)
	return id
}

// requestID takes the caller's X-Request-Id (when it is sane) or makes one,
// echoes it, and puts it in the request's context for logs.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader("X-Request-Id")
		if len(id) == 0 || len(id) > 128 || strings.ContainsAny(id, "\r\n") {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Set(ctxKey{}, id)
		c.Writer.Header().Set("X-Request-Id", id)
		c.Next()
	}
}

// accessLog writes one structured line per request.
func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		level := slog.LevelInfo
		if c.Writer.Status() >= 500 {
			level = slog.LevelError
		}
		log.LogAttrs(c.Request.Context(), level, "request",
			slog.String("request_id", RequestID(c)),
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()),
			slog.Int("bytes", c.Writer.Size()),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", c.ClientIP()),
		)
	}
}

// recovery turns a panic into a 500 problem, logged with the request id,
// never a stack trace to the client.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic", "request_id", RequestID(c), "panic", v)
				writeProblem(c, http.StatusInternalServerError, "internal error (request id "+RequestID(c)+")")
			}
		}()
		c.Next()
	}
}

// requireToken makes every POST carry "Authorization: Bearer <token>" when a
// token is configured. Reads stay open.
func requireToken(api huma.API, token string) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if token == "" || ctx.Method() != http.MethodPost {
			next(ctx)
			return
		}
		got, ok := strings.CutPrefix(ctx.Header("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="aircraft"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "missing or invalid bearer token: send Authorization: Bearer <API_TOKEN>")
			return
		}
		next(ctx)
	}
}

// writeProblem writes an RFC 9457 problem for requests that never reach huma.
func writeProblem(c *gin.Context, status int, detail string) {
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(status, &huma.ErrorModel{Title: http.StatusText(status), Status: status, Detail: detail})
}
