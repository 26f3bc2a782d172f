package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/stacktest"
	"github.com/aircraftdata/platform/app/internal/stacktest/s3standin"
)

// snapshot is a small readsb-hist file of one aircraft at minute n.
func snapshot(icao string, n int) []byte {
	return fmt.Appendf(nil, `{"now": %d, "aircraft": [{"hex": %q, "alt_baro": 1000, "gs": 100, "flight": "%s"}]}`,
		1698796800+60*n, icao, strings.Repeat("X", 200))
}

// run ingests once with s.
func run(t *testing.T, s *Service, req Request) (*Result, error) {
	t.Helper()
	r, err := s.Begin(context.Background(), req.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	return r.Ingest(context.Background(), req, nil)
}

func failedKeys(t *testing.T, s *Service) map[string]string {
	t.Helper()
	files, err := s.FailedFiles(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, f := range files {
		keys[f.Key] = f.Reason
	}
	return keys
}

func isS3Unavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u) && u.Dependency == "s3"
}

// S3 refusing an object for itself (403 AccessDenied from a KMS key, InvalidObjectState of an archived object)
// quarantines that object with S3's words and the run goes on; S3 refusing every object the run fetched is S3
// unavailable and quarantines nothing; an error of the request (credentials) is S3 unavailable even when other objects
// are read.
func TestS3RefusalsArePerObject(t *testing.T) {
	b := stacktest.Bucket(t)
	db, _ := stacktest.DB(t)
	standin, through := s3standin.New(t, b)
	keys := []string{"a.json", "b.json", "c.json", "d.json"}
	for i, k := range keys {
		stacktest.Put(t, b, k, snapshot(fmt.Sprintf("a0000%d", i), i))
	}
	s := &Service{DB: db, Bucket: through, Log: slog.New(slog.DiscardHandler), Workers: 2, Limits: defaultLimits()}

	for _, k := range keys {
		standin.Set(k, s3standin.Refuse(403, "AccessDenied", "Access Denied"))
	}
	if _, err := run(t, s, Request{}); !isS3Unavailable(err) {
		t.Fatalf("every object denied: %v, want s3 unavailable", err)
	}
	if failed := failedKeys(t, s); len(failed) != 0 {
		t.Fatalf("every object denied: quarantined %v, want none", failed)
	}

	standin.Clear()
	standin.Set("b.json", s3standin.Refuse(403, "AccessDenied", "Access Denied"))
	standin.Set("c.json", s3standin.Refuse(403, "InvalidObjectState", "The operation is not valid for the object's storage class"))
	res, err := run(t, s, Request{})
	if err != nil || res.FilesIngested != 2 || res.FilesFailed != 2 {
		t.Fatalf("two objects refused: %+v, %v; want a and d ingested, b and c quarantined", res, err)
	}
	failed := failedKeys(t, s)
	if !strings.Contains(failed["b.json"], "AccessDenied: Access Denied (HTTP 403)") ||
		!strings.Contains(failed["c.json"], "InvalidObjectState: The operation is not valid") || len(failed) != 2 {
		t.Fatalf("quarantined: %v, want b and c with S3's reasons", failed)
	}

	standin.Clear()
	res, err = run(t, s, Request{})
	if err != nil || res.FilesIngested != 0 || res.SkippedByReason[reasonQuarantined] != 2 {
		t.Fatalf("rerun: %+v, %v; want b and c skipped as quarantined", res, err)
	}

	// Request-level: not the object's fault, whatever else is read.
	stacktest.Put(t, b, "e.json", snapshot("a00005", 5))
	stacktest.Put(t, b, "f.json", snapshot("a00006", 6))
	standin.Set("e.json", s3standin.Refuse(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."))
	if _, err := run(t, s, Request{}); !isS3Unavailable(err) {
		t.Fatalf("InvalidAccessKeyId: %v, want s3 unavailable", err)
	}
	if _, ok := failedKeys(t, s)["e.json"]; ok {
		t.Fatal("InvalidAccessKeyId quarantined the object")
	}
}

// S3 stalling, before the headers, after them or mid-body, is S3 unavailable: the file is not quarantined, and the next
// run reads it without retry_failed. The decode time cap (shorter than the test waits here) does not count the wait.
func TestStalledReadIsS3Unavailable(t *testing.T) {
	b := stacktest.Bucket(t)
	db, _ := stacktest.DB(t)
	standin, through := s3standin.New(t, b)
	stacktest.Put(t, b, "a.json", snapshot("a00001", 1))
	stacktest.Put(t, b, "b.json", snapshot("a00002", 2))
	through.Stall = 300 * time.Millisecond
	lim := defaultLimits()
	lim.MaxDecodeTime = time.Second
	s := &Service{DB: db, Bucket: through, Log: slog.New(slog.DiscardHandler), Workers: 1, Limits: lim}

	for name, f := range map[string]s3standin.Fault{
		"no answer": s3standin.Hang(), "headers only": s3standin.Stall(0), "mid-body": s3standin.Stall(100),
	} {
		standin.Set("b.json", f)
		_, err := run(t, s, Request{})
		if !isS3Unavailable(err) || !errors.Is(err, bucket.ErrStalled) {
			t.Fatalf("%s: %v, want s3 unavailable, stalled", name, err)
		}
		if failed := failedKeys(t, s); len(failed) != 0 {
			t.Fatalf("%s: quarantined %v", name, failed)
		}
	}

	standin.Clear()
	res, err := run(t, s, Request{})
	if err != nil || res.FilesFailed != 0 || res.FilesIngested+res.SkippedByReason[reasonAlreadyIngested] != 2 ||
		res.SkippedByReason[reasonQuarantined] != 0 {
		t.Fatalf("rerun: %+v, %v; want b read again and ingested", res, err)
	}
	if _, err := db.Stats(context.Background(), "a00002"); err != nil {
		t.Fatalf("b's aircraft: %v", err)
	}
}

// A file that arrives slowly (but never stalls) and decodes fast is ingested: the decode time cap counts decoding, not
// waiting for S3.
func TestSlowReadIsNotDecodeTime(t *testing.T) {
	b := stacktest.Bucket(t)
	db, _ := stacktest.DB(t)
	standin, through := s3standin.New(t, b)
	body := snapshot("a00001", 1) // ~300 bytes: ~19 chunks of 16, 20 ms apart
	stacktest.Put(t, b, "a.json", body)
	through.Stall = 5 * time.Second
	lim := defaultLimits()
	lim.MaxDecodeTime = 100 * time.Millisecond
	s := &Service{DB: db, Bucket: through, Log: slog.New(slog.DiscardHandler), Workers: 1, Limits: lim}

	standin.Set("a.json", s3standin.Trickle(20*time.Millisecond))
	res, err := run(t, s, Request{})
	if err != nil || res.FilesIngested != 1 || res.FilesFailed != 0 {
		t.Fatalf("slow read: %+v, %v; want the file ingested", res, err)
	}
}

// A key holding a character XML cannot carry breaks no listing: keys are listed URL-encoded and decoded, so each is
// read under its own name.
func TestListingDecodesURLEncodedKeys(t *testing.T) {
	b := stacktest.Bucket(t)
	db, _ := stacktest.DB(t)
	standin, through := s3standin.New(t, b)
	keys := []string{"a\x01b.json", "c d+e%20f é.json"}
	for i, k := range keys {
		stacktest.Put(t, b, k, snapshot(fmt.Sprintf("a0000%d", i), i))
	}
	standin.ServeListing(keys...) // as AWS lists them
	s := &Service{DB: db, Bucket: through, Log: slog.New(slog.DiscardHandler), Workers: 1, Limits: defaultLimits()}
	res, err := run(t, s, Request{})
	if err != nil || res.FilesIngested != 2 || res.FilesSkipped != 0 || res.FilesFailed != 0 {
		t.Fatalf("%+v, %v; want both files ingested", res, err)
	}
}

// A list-format file (no snapshot time) uploaded again with the same bytes and a new ETag (here a multipart upload)
// counts once; new bytes under the key count.
func TestReuploadedListFileCountsOnce(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, _ := stacktest.DB(t)
	s := &Service{DB: db, Bucket: b, Log: slog.New(slog.DiscardHandler), Workers: 1, Limits: defaultLimits()}
	list := []byte(`[{"icao": "a00001", "altitude": 1000, "speed": 100}, {"icao": "a00001", "altitude": 3000, "speed": 300}]`)
	const key = "list.json"
	stacktest.Put(t, b, key, list)
	etag := func() string {
		h, err := b.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.Name), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(h.ETag)
	}
	observations := func() int64 {
		st, err := db.Stats(ctx, "a00001")
		if err != nil {
			t.Fatal(err)
		}
		return st.Observations
	}
	if res, err := run(t, s, Request{}); err != nil || res.FilesIngested != 1 {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	if n := observations(); n != 2 {
		t.Fatalf("observations = %d, want the file's 2 records", n)
	}

	first := etag()
	multipartPut(t, b, key, list)
	if etag() == first {
		t.Fatalf("the multipart upload kept ETag %s: the test needs a new one", first)
	}
	res, err := run(t, s, Request{})
	if err != nil || res.FilesIngested != 0 || res.SkippedByReason[reasonDuplicateContent] != 1 {
		t.Fatalf("same bytes, new ETag: %+v, %v; want a duplicate", res, err)
	}
	if n := observations(); n != 2 {
		t.Fatalf("observations = %d after the re-upload, want 2", n)
	}
	if res, err := run(t, s, Request{}); err != nil || res.SkippedByReason[reasonAlreadyIngested] != 1 {
		t.Fatalf("third run: %+v, %v; want the duplicate in the ledger", res, err)
	}

	stacktest.Put(t, b, key, []byte(`[{"icao": "a00001", "altitude": 2000, "speed": 200}]`))
	if res, err := run(t, s, Request{}); err != nil || res.FilesIngested != 1 {
		t.Fatalf("new bytes: %+v, %v; want them ingested", res, err)
	}
	if n := observations(); n != 3 {
		t.Fatalf("observations = %d after new bytes, want 3", n)
	}
}

// multipartPut uploads body under key as a one-part multipart upload, whose ETag is not the MD5 of the bytes.
func multipartPut(t *testing.T, b bucket.Bucket, key string, body []byte) {
	t.Helper()
	ctx := context.Background()
	up, err := b.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b.Name), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	part, err := b.Client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(b.Name), Key: aws.String(key),
		UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(b.Name), Key: aws.String(key),
		UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{
			Parts: []s3types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}})
	if err != nil {
		t.Fatal(err)
	}
}
