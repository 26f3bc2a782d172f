package download

import (
	"context"
	"log/slog"
	"time"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// Registrar adds records (package mongo).
type Registrar interface {
	Register(ctx context.Context, rs []lanes.Record, now time.Time) (lanes.RegisterResult, error)
}

// Indexer registers the objects of a bucket laid out as …/{lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file} as file records.
type Indexer struct {
	Store  Registrar
	Bucket bucket.Bucket // SOURCE_BUCKET
	Log    *slog.Logger
}

// maxSkippedListed bounds the skipped keys listed in a result.
const maxSkippedListed = 1000

// IndexResult is what an index run did.
type IndexResult struct {
	Bucket  string `json:"bucket"`
	Prefix  string `json:"prefix"`
	Objects int    `json:"objects" doc:"objects listed under the prefix"`
	lanes.RegisterResult
	SkippedCount int       `json:"skipped_count" doc:"objects whose key does not follow the layout"`
	Skipped      []Failure `json:"skipped" doc:"skipped objects with the reason (the first 1000)"`
	Seconds      float64   `json:"duration_seconds"`
}

// Index lists the bucket under prefix and registers every object that follows the layout, a page (up to 1000 objects)
// at a time. It is idempotent: a rerun adds nothing, and an object whose size or etag changed updates its record (back
// to pending). p (may be nil) counts objects listed and their bytes.
func (ix *Indexer) Index(ctx context.Context, prefix string, p *progress.Counter) (*IndexResult, error) {
	start := time.Now()
	res := &IndexResult{Bucket: ix.Bucket.Name, Prefix: prefix, Skipped: []Failure{}}
	err := ix.Bucket.List(ctx, prefix, func(objs []bucket.Object) error {
		recs := make([]lanes.Record, 0, len(objs))
		var bytes int64
		for _, o := range objs {
			res.Objects++
			bytes += o.Size
			r, reason, ok := lanes.ParseKey(o.Key)
			if !ok {
				res.SkippedCount++
				if len(res.Skipped) < maxSkippedListed {
					res.Skipped = append(res.Skipped, Failure{Key: o.Key, Reason: reason})
				}
				continue
			}
			r.Size, r.ETag = o.Size, o.ETag
			if !o.LastModified.IsZero() {
				m := o.LastModified.UTC()
				r.Modified = &m
			}
			recs = append(recs, r)
		}
		p.AddTotal(int64(len(objs)), bytes)
		got, err := ix.Store.Register(ctx, recs, time.Now().UTC())
		if err != nil {
			return err
		}
		res.RegisterResult.Add(got)
		p.AddDone(int64(len(objs)), bytes)
		return nil
	})
	p.TotalKnown()
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}
	if ix.Log != nil {
		ix.Log.Info("bucket indexed", "bucket", res.Bucket, "prefix", prefix, "objects", res.Objects,
			"added", res.Added, "updated", res.Updated, "unchanged", res.Unchanged, "skipped", res.SkippedCount)
	}
	return res, nil
}
