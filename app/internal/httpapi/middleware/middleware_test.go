package middleware

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestRequestIDIsEchoedAndLogged(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(RequestIDs(), AccessLog(log), Recovery(log))
	r.GET("/ok", func(c *gin.Context) { c.String(200, RequestID(c.Request.Context())) })
	r.GET("/panic", func(c *gin.Context) { panic("boom") })

	for _, tc := range []struct{ sent, path string }{{"abc-123", "/ok"}, {"", "/ok"}, {"bad\nid", "/ok"}, {"p-1", "/panic"}} {
		logs.Reset()
		req := httptest.NewRequest("GET", tc.path, nil)
		if tc.sent != "" {
			req.Header["X-Request-Id"] = []string{tc.sent}
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		id := w.Header().Get("X-Request-Id")
		if id == "" || (tc.sent == "abc-123" && id != "abc-123") || id == "bad\nid" {
			t.Errorf("sent %q, got id %q", tc.sent, id)
		}
		if tc.path == "/ok" && w.Body.String() != id {
			t.Errorf("handler saw request id %q, header says %q", w.Body.String(), id)
		}
		if tc.path == "/panic" && (w.Code != http.StatusInternalServerError || bytes.Contains(w.Body.Bytes(), []byte("goroutine"))) {
			t.Errorf("panic: %d %s", w.Code, w.Body)
		}
		// The last log line is the access log, with the id.
		lines := bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n"))
		var entry map[string]any
		if err := json.Unmarshal(lines[len(lines)-1], &entry); err != nil {
			t.Fatal(err)
		}
		if entry["request_id"] != id || entry["msg"] != "request" {
			t.Errorf("log %v, want request_id %q", entry, id)
		}
	}
}

func TestRateLimiterMemoryIsBounded(t *testing.T) {
	l := newClientLimiter(1, 1, 3)
	for i := range 1000 {
		l.allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if n := l.clients.Len(); n != 3 {
		t.Errorf("%d clients remembered, want RATE_LIMIT_CLIENTS (3)", n)
	}
	// The most recently seen is remembered: it has spent its burst.
	if l.allow("10.0.3.231") {
		t.Error("the last client's second request was allowed")
	}
}

// TestAccessLogNamesTheRoute: the access log line names the route template (a bounded value: the stack's latency by
// route is counted from it), "unmatched" when no route matched, never the path.
func TestAccessLogNamesTheRoute(t *testing.T) {
	var logs bytes.Buffer
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(AccessLog(slog.New(slog.NewJSONHandler(&logs, nil))))
	r.GET("/aircraft-stats/:icao", func(c *gin.Context) { c.Status(200) })
	for path, want := range map[string]string{"/aircraft-stats/a65800": "/aircraft-stats/:icao", "/no/such/a65800": "unmatched"} {
		logs.Reset()
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
		var entry map[string]any
		if err := json.Unmarshal(logs.Bytes(), &entry); err != nil {
			t.Fatal(err)
		}
		if entry["route"] != want || entry["path"] != path {
			t.Errorf("%s: route %v, path %v; want route %q", path, entry["route"], entry["path"], want)
		}
	}
}
