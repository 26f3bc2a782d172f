// Package httpapi is the service's HTTP interface: a gin engine whose operations are declared with huma, which
// validates input (422 naming the field), writes RFC 9457 problem details for every error, and generates the OpenAPI
// document from the code. Swagger UI and ReDoc are served from assets embedded in the binary, so the docs work with no
// internet.
package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humagin"
	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"

	"github.com/aircraftdata/platform/app/internal/httpapi/apidocs"
	"github.com/aircraftdata/platform/app/internal/httpapi/middleware"
)

// Deps are what the handlers need.
type Deps struct {
	Log     *slog.Logger
	Version string
	// APITokens are the bearer tokens accepted on every POST (several during a rotation). Empty: POSTs are open
	// (AUTH_DISABLE=true).
	APITokens []string
	// ReadTokens are the bearer tokens accepted, besides APITokens, on the GETs that list keys and paths (listing).
	// Auth off: those are open too.
	ReadTokens []string
	CORS       []string
	// TrustedProxies (IPs or CIDRs) may set the client address with X-Forwarded-For; none by default, so the logged
	// address is the peer's.
	TrustedProxies []string

	Limits Limits

	Stats  Statistics // on the read pool
	Ingest Ingester
	Jobs   Jobs
	Ready  Readiness // nil: not ready

	Lanes *Lanes // lane file downloads; nil without MongoDB

	Metrics middleware.RequestMetrics // told of every request; nil: nobody

	Backfills Backfills // nil: the backfill endpoints answer 503
}

// NewServer returns the service's HTTP handler.
func NewServer(d Deps) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		panic("httpapi: trusted proxies: " + err.Error()) // config validated them
	}
	l := d.Limits
	r.Use(middleware.Metrics(d.Metrics), middleware.RequestIDs(), middleware.AccessLog(d.Log), middleware.Recovery(d.Log),
		middleware.RateLimit(l.PerSecond, l.Burst, l.Clients, unbounded), middleware.InFlight(l.InFlight, unbounded),
		middleware.ReadDeadline(l.ReadTimeout, isPost))
	if len(d.CORS) > 0 {
		r.Use(cors.New(cors.Config{
			AllowOrigins:  d.CORS,
			AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodOptions},
			AllowHeaders:  []string{"Authorization", "Content-Type", "Prefer", "X-Request-Id"},
			ExposeHeaders: []string{"Location", "X-Request-Id"},
			MaxAge:        12 * time.Hour,
		}))
	}
	r.NoRoute(func(c *gin.Context) {
		middleware.Problem(c, http.StatusNotFound, "no such endpoint: "+c.Request.URL.Path)
	})
	r.NoMethod(func(c *gin.Context) { middleware.Problem(c, http.StatusMethodNotAllowed, "method not allowed") })
	r.HandleMethodNotAllowed = true

	cfg := huma.DefaultConfig("Aircraft data platform", d.Version)
	cfg.Info.Description = "Flight statistics from ADS-B readsb-hist files in S3, and lane file downloads tracked in MongoDB."
	cfg.DocsPath = ""     // Swagger UI and ReDoc are served below (apidocs), from embedded assets
	cfg.CreateHooks = nil // no $schema links in response bodies: keep the seeds' shapes
	cfg.OpenAPIPath = ""  // served below (apidocs)
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "one of the tokens of API_TOKEN; required for every POST"},
		"read":   {Type: "http", Scheme: "bearer", Description: "one of the tokens of READ_TOKEN: lists that reveal S3 keys and paths (API_TOKEN works too)"},
	}
	api := humagin.New(r, cfg)
	api.UseMiddleware(middleware.RequireToken(api, d.APITokens, map[string][]string{"bearer": d.APITokens, "read": d.ReadTokens}))

	routes(api, &handlers{Deps: d})
	apidocs.Register(r, api)
	return r
}

// handlers serve the operations that routes declares, with the service's dependencies.
type handlers struct {
	Deps
}
