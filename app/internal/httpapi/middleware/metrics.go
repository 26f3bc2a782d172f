package middleware

import (
	"time"

	"github.com/gin-gonic/gin"
)

// RequestMetrics is told of every request answered (package metrics implements it): the route template (gin's FullPath,
// "" when no route matched: never the path itself), the method, the status and the time.
type RequestMetrics interface {
	Request(route, method string, status int, d time.Duration)
}

// Metrics tells m of each request once it is answered; nil m: a middleware that does nothing.
func Metrics(m RequestMetrics) gin.HandlerFunc {
	if m == nil {
		return func(c *gin.Context) { c.Next() }
	}
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		m.Request(c.FullPath(), c.Request.Method, c.Writer.Status(), time.Since(start))
	}
}
