package httpapi

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
	r.Use(requestID(), accessLog(log), recovery(log))
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

func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	for _, c := range []struct {
		trusted []string
		want    string
	}{{nil, "192.0.2.1"}, {[]string{"192.0.2.0/24"}, "203.0.113.9"}} {
		var logs bytes.Buffer
		h := NewServer(Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Version: "test", TrustedProxies: c.trusted})
		req := httptest.NewRequest("GET", "/api/v1/health", nil)
		req.RemoteAddr = "192.0.2.1:4000"
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		h.ServeHTTP(httptest.NewRecorder(), req)
		var entry map[string]any
		_ = json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &entry)
		if entry["remote"] != c.want {
			t.Errorf("trusted %v: logged client %v, want %s", c.trusted, entry["remote"], c.want)
		}
	}
}

func TestRateLimiterMemoryIsBounded(t *testing.T) {
	l := newClientLimiter(Limits{PerSecond: 1, Burst: 1, Clients: 3})
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
