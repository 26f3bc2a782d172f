package middleware

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// RequireToken is huma middleware that makes every operation that declares a security scheme carry "Authorization:
// Bearer <token>" with a token of one of its schemes (tokens: scheme → its tokens): POSTs (bearer: API_TOKEN) and
// listings (read: READ_TOKEN, or bearer). With no API token, auth is off, which the service only allows when told so
// explicitly.
func RequireToken(api huma.API, apiTokens []string, tokens map[string][]string) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		if len(apiTokens) == 0 || len(op.Security) == 0 {
			next(ctx)
			return
		}
		got, ok := strings.CutPrefix(ctx.Header("Authorization"), "Bearer ")
		match := 0
		for _, req := range op.Security {
			for scheme := range req {
				for _, t := range tokens[scheme] { // every one, in constant time: no early exit
					match |= subtle.ConstantTimeCompare([]byte(got), []byte(t))
				}
			}
		}
		if !ok || got == "" || match != 1 {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="aircraft"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "missing or invalid bearer token: send Authorization: Bearer <token>")
			return
		}
		next(ctx)
	}
}
