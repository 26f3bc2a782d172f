// Package apidocs serves the API's documentation from the binary: the OpenAPI document that huma generates, and Swagger
// UI and ReDoc to read it.
package apidocs

import (
	"encoding/json"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gin-gonic/gin"
	redoc "github.com/mvrilo/go-redoc"
	swaggerfiles "github.com/swaggo/files/v2"
)

// Swagger UI comes from github.com/swaggo/files/v2 (swagger-ui-dist 5.x) and ReDoc from github.com/mvrilo/go-redoc
// (redoc.standalone.js), both embedded in their Go modules: the docs need no CDN.

const swaggerPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Aircraft data platform — API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});</script>
</body></html>`

const redocPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Aircraft data platform — API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/redoc/redoc.standalone.js"></script>
</body></html>`

var redocJS = []byte(redoc.JavaScript)

// Register serves, on r, api's OpenAPI document at /openapi.json (and .yaml, -3.0.json, -3.0.yaml), Swagger UI at /docs
// and ReDoc at /redoc. Call it once every operation of api is registered.
func Register(r *gin.Engine, api huma.API) {
	registerPages(r)
	registerSpec(r, api)
}

func registerPages(r *gin.Engine) {
	html := func(page string) gin.HandlerFunc {
		return func(c *gin.Context) { c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(page)) }
	}
	r.GET("/docs", html(swaggerPage))
	r.StaticFS("/docs/assets", http.FS(swaggerfiles.FS))
	r.GET("/redoc", html(redocPage))
	r.GET("/redoc/redoc.standalone.js", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=86400")
		c.Data(http.StatusOK, "application/javascript", redocJS)
	})
}

// registerSpec serves the OpenAPI document (3.1, and 3.0 for older tools, in JSON and YAML), made once here, when every
// operation is registered: huma's own handlers make it on the first request into a variable without a lock (a data race
// when the first requests come at once), and a document that never changes needs no work per request.
func registerSpec(r *gin.Engine, api huma.API) {
	doc := api.OpenAPI()
	for path, spec := range map[string]struct {
		make func() ([]byte, error)
		typ  string
	}{
		"/openapi.json":     {func() ([]byte, error) { return json.Marshal(doc) }, "application/openapi+json"},
		"/openapi.yaml":     {doc.YAML, "application/openapi+yaml"},
		"/openapi-3.0.json": {doc.Downgrade, "application/openapi+json"},
		"/openapi-3.0.yaml": {doc.DowngradeYAML, "application/openapi+yaml"},
	} {
		body, err := spec.make()
		if err != nil {
			panic("apidocs: openapi document: " + err.Error()) // a bug in an operation's declaration
		}
		r.GET(path, func(c *gin.Context) { c.Data(http.StatusOK, spec.typ, body) })
	}
}
