package download_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/stacktest/s3standin"
)

// rawMarkers are words of the SDK's, a driver's or the system's own error texts, which no reason a client sees may
// carry.
var rawMarkers = []string{"operation error", "StatusCode", "RequestID", "RequestId", "https://", "http://",
	"127.0.0.1", "SQLSTATE", "connection refused", "api error"}

// rawIn returns the first raw marker in s, or "".
func rawIn(s string) string {
	for _, m := range rawMarkers {
		if strings.Contains(s, m) {
			return m
		}
	}
	return ""
}

// syncBuffer is a log sink for a logger used by many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestFailureReasonsAreOurs: S3 refuses two objects of an hour (an error code the downloader knows, AccessDenied, and
// one it does not). Their reasons, in the answer and as the records' last_error, name the object and S3's code, never
// the SDK's text (operation, status line, request id, endpoint); the log has that text.
func TestFailureReasonsAreOurs(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{"f0.bin", "f1.bin", "f2.bin"} {
		e.put(t, "lane1/2024/02/14/14/"+k, 1000, s3types.ChecksumAlgorithmCrc32c)
	}
	e.index(t)
	standin, through := s3standin.New(t, e.bucket)
	denied, invalid := e.prefix+"lane1/2024/02/14/14/f0.bin", e.prefix+"lane1/2024/02/14/14/f1.bin"
	standin.Set(denied, s3standin.Refuse(403, "AccessDenied", "Access Denied"))
	standin.Set(invalid, s3standin.Refuse(400, "InvalidArgument", "Invalid Argument"))
	var log syncBuffer
	d := e.downloader(t, through.Client, func(c *download.Config) { c.Log = slog.New(slog.NewTextHandler(&log, nil)) })

	got, err := d.Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.SuccessCount != 1 || got.FailureCount != 2 {
		t.Fatalf("got %d ok, failures %v; want f2 ok, f0 and f1 failed", got.SuccessCount, got.Failures)
	}
	want := map[string]string{denied: "AccessDenied", invalid: "InvalidArgument"}
	for _, f := range got.Failures {
		r, _ := e.store.Get(ctx, f.Key)
		for where, reason := range map[string]string{"answer": f.Reason, "last_error": r.LastError} {
			if m := rawIn(reason); m != "" {
				t.Errorf("%s of %s: %q carries %q", where, f.Key, reason, m)
			}
			if !strings.Contains(reason, want[f.Key]) || !strings.Contains(reason, f.Key) {
				t.Errorf("%s of %s: %q does not name the object and S3's code %s", where, f.Key, reason, want[f.Key])
			}
		}
		if r.Status != lanes.Failed {
			t.Errorf("record of %s: %+v", f.Key, r)
		}
	}
	if l := log.String(); !strings.Contains(l, "StatusCode: 400") || !strings.Contains(l, "RequestID") {
		t.Errorf("the log lacks the SDK's words:\n%s", l)
	}
}
