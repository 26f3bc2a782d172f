package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"

	"github.com/aws/smithy-go"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/readsb"
)

type fetched struct {
	obj       bucket.Object
	versionID string
	file      *readsb.File
	sha256    []byte // of the object's bytes, with a file without a snapshot time (hash)
	skip      string // reason, when the object was not fetched
	refused   string // S3 refused the object, with this reason
	err       error  // the file's fault: it is quarantined
	depErr    error  // a dependency failed: the run stops
}

// list sends the objects of src that the ledger does not hold to tasks and the others straight to results.
func (s *Service) list(ctx context.Context, req Request, src source, p *progress.Counter, tasks chan<- bucket.Object,
	results chan<- fetched) error {
	err := src(ctx, func(objs []bucket.Object) error {
		refs := make([]ledger.Object, len(objs))
		var size int64
		for i, o := range objs {
			refs[i] = ledger.Object{Bucket: s.Bucket.Name, Key: o.Key, ETag: o.ETag}
			size += o.Size
		}
		p.AddTotal(int64(len(objs)), size)
		known, err := s.DB.Known(ctx, s.Bucket.Name, refs)
		if err != nil {
			return s.unavailable(ctx, "postgres", err)
		}
		for i, o := range objs {
			switch outcome, ok := known[refs[i]]; {
			case outcome == ledger.Failed && !req.RetryFailed:
				err = send(ctx, results, fetched{obj: o, skip: reasonQuarantined})
			case ok && outcome != ledger.Failed:
				err = send(ctx, results, fetched{obj: o, skip: reasonAlreadyIngested})
			default:
				err = send(ctx, tasks, o)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.As(err, new(*UnavailableError)) && ctx.Err() == nil {
		return s.unavailable(ctx, "s3", err)
	}
	return err
}

func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// decode is readsb.Decode (a variable so that a test can inject a bug).
var decode = readsb.Decode

// fetchContained is fetch with a panic (a bug met by this file) turned into an error that fails the run: the caller
// answers "internal error" and logs the stack.
func (s *Service) fetchContained(ctx context.Context, obj bucket.Object) (f fetched) {
	if err := panics.Catch(func() error { f = s.fetch(ctx, obj); return nil }); err != nil {
		return fetched{obj: obj, err: err}
	}
	return f
}

// fetch reads and decodes one object. Decoding is bounded by the decode time cap, waiting for S3 by the bucket's stall
// timeout (a dependency failure).
func (s *Service) fetch(ctx context.Context, obj bucket.Object) fetched {
	body, versionID, err := s.Bucket.Open(ctx, obj.Key, obj.ETag)
	if err != nil {
		return s.openFailed(ctx, obj, err)
	}
	defer body.Close()
	file, err := decode(body, s.Limits)
	var source *readsb.SourceError
	switch {
	case err == nil:
	case errors.As(err, &source):
		return fetched{obj: obj, depErr: s.unavailable(ctx, "s3", err)}
	default:
		return fetched{obj: obj, versionID: versionID, err: err}
	}
	// The decoder reads a good file to its end; a little more is read in case it did not, so that the connection can be
	// reused.
	if _, err := io.CopyN(io.Discard, body, 64<<10); err != nil && err != io.EOF {
		return fetched{obj: obj, depErr: s.unavailable(ctx, "s3", err)}
	}
	f := fetched{obj: obj, versionID: versionID, file: file}
	if file.Now.IsZero() {
		// A format without a snapshot time: the object's time stands in.
		file.Aircraft.Stamp(obj.LastModified.UTC())
		return s.hash(ctx, f)
	}
	return f
}

// hash returns f with the SHA-256 of its object's bytes (as stored, compressed or not), read again from S3 with its
// ETag pinned, so that they are the bytes just decoded. Only a file without a snapshot time (the list format) needs
// them: it is known by its bytes alone (a version whose bytes another version of its key holds is a duplicate,
// docs/ingestion.md "Exactly once for lists"), whereas a snapshot is known by its time (its claim in snapshots),
// whatever its bytes. Hashing every object was 7-9% of a backfill worker's CPU (its profile, 2026-12-07); list files
// are few and small, and a second GET each costs less.
func (s *Service) hash(ctx context.Context, f fetched) fetched {
	body, _, err := s.Bucket.Open(ctx, f.obj.Key, f.obj.ETag)
	if err != nil {
		return s.openFailed(ctx, f.obj, err)
	}
	defer body.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, body); err != nil {
		return fetched{obj: f.obj, depErr: s.unavailable(ctx, "s3", err)}
	}
	f.sha256 = sum.Sum(nil)
	return f
}

// openFailed is what becomes of obj when S3 does not give its bytes: changed since listed (skipped), refused (S3 says
// no to this object), or S3 unavailable.
func (s *Service) openFailed(ctx context.Context, obj bucket.Object, err error) fetched {
	if changed(err) {
		return fetched{obj: obj, skip: reasonChanged}
	}
	if reason, ok := bucket.Refusal(err); ok {
		return fetched{obj: obj, refused: reason}
	}
	return fetched{obj: obj, depErr: s.unavailable(ctx, "s3", err)}
}

// changed reports whether err says the object is gone or has another ETag since it was listed: the next run sees its
// new state.
func changed(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound", "PreconditionFailed":
			return true
		}
	}
	return false
}
