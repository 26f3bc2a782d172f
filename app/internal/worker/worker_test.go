package worker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// recorder is a Processor that keeps what it was given and fails with err.
type recorder struct {
	calls [][]bucket.Object
	reqs  []ingest.Request
	err   error
}

func (r *recorder) Process(_ context.Context, objs []bucket.Object, req ingest.Request, _ *progress.Counter) (*ingest.Result, error) {
	r.calls = append(r.calls, objs)
	r.reqs = append(r.reqs, req)
	if r.err != nil {
		return nil, r.err
	}
	return &ingest.Result{FilesSeen: len(objs)}, nil
}

// A batch as the Distributed Map's ItemReader (ListObjectsV2) and ItemBatcher write it: the ETag in quotes,
// LastModified in epoch seconds.
const mapBatch = `{
  "Items": [
    {"Etag": "\"05704fbdccb224cb01c59005bebbad28\"", "Key": "2023/11/01/000030Z.json", "LastModified": 1668699881, "Size": 34748, "StorageClass": "STANDARD"},
    {"Etag": "\"b1946ac92492d2347c6235b4d2611184\"", "Key": "2023/11/01/000035Z.json.gz", "LastModified": "2026-12-01T10:00:00Z", "Size": 6, "StorageClass": "STANDARD"}
  ],
  "BatchInput": {"retry_failed": true}
}`

func TestMapBatch(t *testing.T) {
	r := &recorder{}
	h := &Handler{Ingest: r, Bucket: "b"}
	out, err := h.Invoke(context.Background(), json.RawMessage(mapBatch))
	if err != nil {
		t.Fatal(err)
	}
	if res, ok := out.(*ingest.Result); !ok || res.FilesSeen != 2 {
		t.Fatalf("result %#v", out)
	}
	want := []bucket.Object{
		{Key: "2023/11/01/000030Z.json", ETag: "05704fbdccb224cb01c59005bebbad28", Size: 34748, LastModified: time.Unix(1668699881, 0).UTC()},
		{Key: "2023/11/01/000035Z.json.gz", ETag: "b1946ac92492d2347c6235b4d2611184", Size: 6, LastModified: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
	}
	if len(r.calls) != 1 || !slices.Equal(r.calls[0], want) {
		t.Fatalf("processed %+v\nwant %+v", r.calls, want)
	}
	if !r.reqs[0].RetryFailed {
		t.Error("retry_failed of BatchInput not passed on")
	}

	// A dependency failing fails the invocation: the map retries the batch.
	r.err = &ingest.UnavailableError{Dependency: "postgres", Err: errors.New("down")}
	if _, err := h.Invoke(context.Background(), json.RawMessage(mapBatch)); !errors.Is(err, r.err) {
		t.Fatalf("error %v, want the dependency's", err)
	}
	for _, bad := range []string{
		`{"Items": [{"Key": "k", "Size": 1}]}`, // no Etag
		`{"Items": [{"Key": "k", "Etag": "e", "LastModified": "yesterday"}]}`,
		`{"Something": []}`,
		`[]`,
	} {
		if _, err := h.Invoke(context.Background(), json.RawMessage(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// notification is an S3 event notification of bucket for the key as S3 writes it (URL-encoded, spaces as +).
func notification(t *testing.T, event, bucketName, key string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": "2026-12-07T03:00:05.123Z", "eventName": event,
		"s3": map[string]any{
			"bucket": map[string]any{"name": bucketName, "arn": "arn:aws:s3:::" + bucketName},
			"object": map[string]any{"key": key, "size": 42, "eTag": "0123abcd", "sequencer": "0A1B"},
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sqsEvent(bodies ...string) json.RawMessage {
	var e events.SQSEvent
	for i, b := range bodies {
		e.Records = append(e.Records, events.SQSMessage{MessageId: string(rune('a' + i)), Body: b, EventSource: "aws:sqs"})
	}
	raw, _ := json.Marshal(e)
	return raw
}

func TestQueueBatch(t *testing.T) {
	r := &recorder{}
	h := &Handler{Ingest: r, Bucket: "flights"}
	ev := sqsEvent(
		notification(t, "ObjectCreated:Put", "flights", "2023/11/01/a+b%C3%A9%2B.json"), // a
		`{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"flights"}`,             // b: done, nothing to read
		notification(t, "ObjectRemoved:Delete", "flights", "gone.json"),                 // c: done, nothing to read
		notification(t, "ObjectCreated:CompleteMultipartUpload", "other", "x.json"),     // d: not ours
		`not json`, // e
		notification(t, "ObjectCreated:Copy", "flights", "2023/11/01/c.json"), // f
	)
	out, err := h.Invoke(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(events.SQSEventResponse)
	if got := failed(resp); !slices.Equal(got, []string{"d", "e"}) {
		t.Errorf("failures %v, want d and e (not notifications of the bucket)", got)
	}
	at := time.Date(2026, 12, 7, 3, 0, 5, 123e6, time.UTC)
	want := []bucket.Object{
		{Key: "2023/11/01/a bé+.json", ETag: "0123abcd", Size: 42, LastModified: at},
		{Key: "2023/11/01/c.json", ETag: "0123abcd", Size: 42, LastModified: at},
	}
	if len(r.calls) != 1 || !slices.Equal(r.calls[0], want) {
		t.Fatalf("processed %+v\nwant %+v", r.calls, want)
	}

	// A dependency failing: the messages with objects are delivered again.
	r.err = &ingest.UnavailableError{Dependency: "s3", Err: errors.New("down")}
	out, err = h.Invoke(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failed(out.(events.SQSEventResponse)); !slices.Equal(got, []string{"d", "e", "a", "f"}) {
		t.Errorf("failures %v, want d, e, a and f", got)
	}
}

func failed(r events.SQSEventResponse) []string {
	var ids []string
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}
