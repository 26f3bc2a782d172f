package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"
)

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
