// Package worker is the ingestion worker of AWS Lambda (cmd/ingest-worker): it turns the events that invoke it into
// batches of objects for ingest.Service.Process, which counts each file once however many workers run at once.
//
// Two kinds of events invoke it:
//
//   - a batch of a Step Functions Distributed Map whose ItemReader lists the bucket (ListObjectsV2) and whose
//     ItemBatcher groups the keys: {"Items": [{"Key", "Etag", "Size", "LastModified", …}], "BatchInput": {…}}. A
//     dependency failing fails the invocation (the map retries the batch); a bad file is quarantined and the batch
//     succeeds.
//   - an SQS batch whose messages carry S3 event notifications of new objects (live ingestion). The answer is a partial
//     batch response: a dependency failing lists the messages of the batch for SQS to deliver again; a bad file is
//     quarantined and its message done, so a poison object never goes round and round. A message that is not an S3
//     notification is listed as failed too, so that it ends in the queue's dead-letter queue.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// Processor ingests a batch of objects exactly once (ingest.Service).
type Processor interface {
	Process(ctx context.Context, objs []bucket.Object, req ingest.Request, p *progress.Counter) (*ingest.Result, error)
}

// Handler answers the worker's invocations.
type Handler struct {
	Ingest Processor
	Bucket string // the bucket Ingest reads (S3_BUCKET): notifications of another are refused
	Log    *slog.Logger
}

// Item is an object of a Distributed Map batch, as the ItemReader of ListObjectsV2 gives it: the ETag in quotes,
// LastModified in epoch seconds.
type Item struct {
	Key          string `json:"Key"`
	Etag         string `json:"Etag"`
	Size         int64  `json:"Size"`
	LastModified Time   `json:"LastModified"`
}

// Time is a time as the ItemReader writes it, epoch seconds, or RFC 3339.
type Time struct{ time.Time }

// UnmarshalJSON reads epoch seconds (a number) or an RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		s = string(b)
	}
	if sec, err := strconv.ParseFloat(s, 64); err == nil {
		t.Time = time.UnixMilli(int64(math.Round(sec * 1000))).UTC()
		return nil
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("LastModified %s: neither epoch seconds nor RFC 3339", b)
	}
	t.Time = v.UTC()
	return nil
}

// MapBatch is the input of a Distributed Map child: the batch of items, and what the state machine adds to every batch
// (BatchInput).
type MapBatch struct {
	Items      []Item     `json:"Items"`
	BatchInput BatchInput `json:"BatchInput"`
}

// BatchInput is what every batch of a backfill carries.
type BatchInput struct {
	RetryFailed bool `json:"retry_failed"` // read quarantined files again
}

// Invoke handles one invocation: a Distributed Map batch (an object with Items) or an SQS event (an object with
// Records).
func (h *Handler) Invoke(ctx context.Context, event json.RawMessage) (any, error) {
	var kind struct {
		Items   json.RawMessage `json:"Items"`
		Records json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(event, &kind); err != nil {
		return nil, fmt.Errorf("worker: the event is not a JSON object: %w", err)
	}
	switch {
	case kind.Items != nil:
		var b MapBatch
		if err := json.Unmarshal(event, &b); err != nil {
			return nil, fmt.Errorf("worker: a map batch: %w", err)
		}
		return h.Batch(ctx, b)
	case kind.Records != nil:
		var e events.SQSEvent
		if err := json.Unmarshal(event, &e); err != nil {
			return nil, fmt.Errorf("worker: an SQS event: %w", err)
		}
		return h.Queue(ctx, e), nil
	}
	return nil, errors.New("worker: the event is neither a map batch (Items) nor an SQS event (Records)")
}

// Batch ingests the items of a Distributed Map batch. Its error (a dependency unavailable) fails the invocation, and
// the map retries it.
func (h *Handler) Batch(ctx context.Context, b MapBatch) (*ingest.Result, error) {
	objs := make([]bucket.Object, 0, len(b.Items))
	for _, it := range b.Items {
		o, err := it.object()
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	res, err := h.Ingest.Process(ctx, objs, ingest.Request{RetryFailed: b.BatchInput.RetryFailed}, nil)
	if err != nil {
		return nil, err
	}
	h.log().Info("map batch ingested", "files", len(objs), "ingested", res.FilesIngested,
		"skipped", res.FilesSkipped, "failed", res.FilesFailed, "observations", res.Observations)
	return res, nil
}

func (it Item) object() (bucket.Object, error) {
	if it.Key == "" || it.Etag == "" {
		return bucket.Object{}, fmt.Errorf("worker: an item without Key or Etag: %+v", it)
	}
	return bucket.Object{Key: it.Key, ETag: strings.Trim(it.Etag, `"`), Size: it.Size, LastModified: it.LastModified.Time}, nil
}

// Queue ingests the new objects named by the S3 notifications of an SQS batch, all in one Process, and answers which
// messages SQS must deliver again: every message with an object when a dependency failed, and every message that is not
// a notification of the bucket.
func (h *Handler) Queue(ctx context.Context, e events.SQSEvent) events.SQSEventResponse {
	var resp events.SQSEventResponse
	var objs []bucket.Object
	var carrying []string // ids of the messages with an object to ingest
	for _, m := range e.Records {
		found, err := h.notified(m.Body)
		if err != nil {
			h.log().Error("a message that is not an S3 notification of the bucket: left for the dead-letter queue",
				"message_id", m.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			continue
		}
		if len(found) > 0 {
			objs = append(objs, found...)
			carrying = append(carrying, m.MessageId)
		}
	}
	if len(objs) == 0 {
		return resp
	}
	res, err := h.Ingest.Process(ctx, objs, ingest.Request{}, nil)
	if err != nil {
		h.log().Error("queue batch not ingested: its messages are delivered again", "messages", len(carrying), "error", err)
		for _, id := range carrying {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
		}
		return resp
	}
	h.log().Info("queue batch ingested", "messages", len(carrying), "files", len(objs), "ingested", res.FilesIngested,
		"skipped", res.FilesSkipped, "failed", res.FilesFailed, "observations", res.Observations)
	return resp
}

// notified returns the objects created in the bucket that an S3 notification names. S3's test event and events other
// than a creation name none.
func (h *Handler) notified(body string) ([]bucket.Object, error) {
	var n struct {
		events.S3Event
		Event string `json:"Event"` // "s3:TestEvent" when the notification is set up
	}
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		return nil, err
	}
	if n.Records == nil {
		if n.Event == "s3:TestEvent" {
			return nil, nil
		}
		return nil, errors.New("no Records")
	}
	var objs []bucket.Object
	for _, r := range n.Records {
		if !strings.HasPrefix(r.EventName, "ObjectCreated:") {
			continue
		}
		if r.S3.Bucket.Name != h.Bucket {
			return nil, fmt.Errorf("a notification of bucket %q, not %q", r.S3.Bucket.Name, h.Bucket)
		}
		o := r.S3.Object
		if o.URLDecodedKey == "" || o.ETag == "" {
			return nil, fmt.Errorf("a notification without key or eTag: %q", o.Key)
		}
		objs = append(objs, bucket.Object{
			Key: o.URLDecodedKey, ETag: strings.Trim(o.ETag, `"`), Size: o.Size, LastModified: r.EventTime.UTC(),
		})
	}
	return objs, nil
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
