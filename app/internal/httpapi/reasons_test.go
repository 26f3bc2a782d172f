package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/httpapi"
	"github.com/aircraftdata/platform/app/internal/httpapi/middleware"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/mongo/mongotest"
	"github.com/aircraftdata/platform/app/internal/stacktest"
	"github.com/aircraftdata/platform/app/internal/stacktest/s3standin"
)

// rawMarkers are words of the SDK's, a driver's or the system's own error texts, which nothing a client is told may
// carry.
var rawMarkers = []string{"operation error", "StatusCode", "RequestID", "RequestId", "https://", "http://",
	"127.0.0.1", "SQLSTATE", "connection refused", "api error"}

// lockedBuffer is a log sink for a logger used by many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestClientsSeeOurReasons: S3 answers an error the downloader has no words of its own for (400 InvalidArgument) for
// one object of an hour, and the index job lists a bucket that does not exist. What the client is told of them (the
// download's failures, synchronous and as a job's result, the record's last_error in the files list, the index job's
// error) carries none of the SDK's words; the log has them, with the request id.
func TestClientsSeeOurReasons(t *testing.T) {
	ctx := context.Background()
	store := mongotest.Store(t)
	b := stacktest.Bucket(t)
	standin, through := s3standin.New(t, b)
	var log lockedBuffer
	logger := slog.New(middleware.WithRequestIDs(slog.NewTextHandler(&log, nil)))
	root := filepath.Join(t.TempDir(), "downloads")
	def := config.Defaults()
	dl, err := download.New(download.Config{Records: store, Claims: store, S3: through.Client, Bucket: b.Name, Root: root,
		Workers: def.DownloadWorkers, Lease: def.DownloadClaimLease, Wait: def.DownloadWait, PartSize: 2 << 20, Log: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Close() })
	reg := jobs.NewRegistry(logger, jobs.Limits{MaxRunning: 8, KeepFinished: 100, KeepFor: time.Hour})
	t.Cleanup(func() { reg.Stop(errors.New("test over")) })
	missing := bucket.Bucket{Client: b.Client, Name: b.Name + "-missing"}
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
		Log: logger, Version: "test", APITokens: []string{filesToken}, Jobs: reg,
		Lanes: &httpapi.Lanes{Store: store, Downloader: httpapi.Downloads(dl), Indexer: &download.Indexer{Store: store, Bucket: missing, Log: logger}},
	}))
	t.Cleanup(srv.Close)

	prefix := stacktest.Name("lanes/reasons") + "/"
	for _, k := range []string{"a.bin", "b.bin"} {
		if _, err := b.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b.Name), Key: aws.String(prefix + "lane1/2024/02/14/14/" + k),
			Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := (&download.Indexer{Store: store, Bucket: b}).Index(ctx, prefix, nil); err != nil {
		t.Fatal(err)
	}
	refused := prefix + "lane1/2024/02/14/14/b.bin"
	standin.Set(refused, s3standin.Refuse(400, "InvalidArgument", "Invalid Argument"))

	told := map[string]string{} // where → what the client was told
	hour := map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}
	status, res, hdr := call(t, "POST", srv.URL+"/api/v1/download", hour)
	syncID := hdr.Get("X-Request-Id")
	if status != http.StatusOK || res["failure_count"] != 1.0 {
		t.Fatalf("download: %d %v", status, res)
	}
	told["download answer"] = fmt.Sprint(res["failures"])
	if !strings.Contains(told["download answer"], "InvalidArgument") {
		t.Errorf("the answer's reason does not name S3's code: %s", told["download answer"])
	}
	_, page, _ := call(t, "GET", srv.URL+"/api/v1/files?status=failed", nil)
	told["files list"] = fmt.Sprint(page["items"])
	if !strings.Contains(told["files list"], refused) {
		t.Errorf("the failed record is not listed: %v", page)
	}
	var job map[string]any
	status, job, hdr = call(t, "POST", srv.URL+"/api/v1/download?async=true", hour)
	if status != http.StatusAccepted {
		t.Fatalf("async download: %d %v", status, job)
	}
	job = pollJob(t, srv.URL+hdr.Get("Location"))
	told["download job"] = fmt.Sprint(job)
	if !strings.Contains(told["download job"], "InvalidArgument") {
		t.Errorf("the job's reason does not name S3's code: %v", job)
	}

	status, job, hdr = call(t, "POST", srv.URL+"/api/v1/files/index?async=true", map[string]any{"prefix": prefix})
	if status != http.StatusAccepted {
		t.Fatalf("async index: %d %v", status, job)
	}
	id := fmt.Sprint(job["request_id"])
	job = pollJob(t, srv.URL+hdr.Get("Location"))
	if job["state"] != "failed" || !strings.Contains(fmt.Sprint(job["error"]), id) {
		t.Errorf("index job of a missing bucket: %v, want failed with the request id %s", job, id)
	}
	told["index job"] = fmt.Sprint(job)

	for where, text := range told {
		for _, m := range rawMarkers {
			if strings.Contains(text, m) {
				t.Errorf("%s carries %q: %s", where, m, text)
			}
		}
	}
	l := log.String()
	if !strings.Contains(l, "NoSuchBucket") || !strings.Contains(l, "request_id="+id) {
		t.Errorf("the log lacks the index job's SDK words or its request id %s:\n%s", id, l)
	}
	found := false
	for _, line := range strings.Split(l, "\n") {
		found = found || strings.Contains(line, "download failed") && strings.Contains(line, "StatusCode: 400") &&
			strings.Contains(line, "request_id="+syncID)
	}
	if !found {
		t.Errorf("the log has no download failure with the SDK's words and the request id %s:\n%s", syncID, l)
	}
}
