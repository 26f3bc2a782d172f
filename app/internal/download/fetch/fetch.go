// Package fetch turns an S3 object into a verified, durable local file: the engine under package download, which
// decides which objects to fetch and records what happened.
//
// Each object is fetched with the AWS SDK's transfer manager in parallel ranged GETs (one GET for a small object)
// written straight to a temp file in the target folder (with O_DIRECT when durable; memory does not grow with the
// file), verified against the object's checksum while it is written (CRCs of out-of-order ranges are combined), then
// synced and renamed into place by Commit: a file is there whole or not at all. A file already present with the right
// size and checksum is not fetched again. Transient errors are retried with exponential backoff and jitter, by the SDK
// per request and here per object.
//
//   - fetch.go: the engine, its S3 clients, and one object's attempts.
//   - s3.go: what S3 says of an object (ETag, version, checksums) and of a failure (transient or not, and the reason a
//     client can act on).
//   - stage.go: the temp file: room on the disk (admit), the writes, the verification, and Commit or Discard.
//   - folders.go: the target folders, their syncs, and the temp files left by a process that died (Sweep).
//   - package disk: the bytes into the file (O_DIRECT, checksums as they come).
package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aircraftdata/platform/app/internal/download/fetch/disk"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// Config configures a Fetcher. Every field is required.
type Config struct {
	S3              *s3.Client // the service's client; the fetcher derives its own transport from it
	Bucket          string
	Files           int           // objects fetched at once (sizes the connection pool)
	PartSize        int64         // bytes per ranged GET
	PartConcurrency int           // ranged GETs at once per object
	Attempts        int           // tries per object on transient errors
	ReadTimeout     time.Duration // a connection idle this long is dropped (and the range retried)
	Durable         bool          // write with O_DIRECT and sync before the rename (package download's Config.Durable)
	Log             *slog.Logger
	Retried         func(err error) // told of each try repeated, with the error of the last; nil: nobody

	// Volume is a path on the file system the files go to (DOWNLOAD_PATH). Before each file is written, its free space
	// less the objects being written must stay at least Reserve after the object: else the file fails and nothing is
	// written. Objects bigger than MaxObject (0: no cap) fail too. Both refusals are permanent (not retried).
	Volume    string
	Reserve   int64
	MaxObject int64
}

// Fetcher fetches objects of one bucket into files.
type Fetcher struct {
	cfg Config
	s3  *s3.Client
	tm  *transfermanager.Client

	space   sync.Mutex
	writing int64 // bytes of the objects being written, admitted but not yet committed or removed
}

// New prepares a fetcher.
func New(cfg Config) *Fetcher {
	// A client of our own: enough pooled connections for every object's ranges, a read timeout so a stalled connection
	// fails (and is retried) instead of hanging, and more patient retries (exponential backoff with full jitter) than
	// the service's default.
	hc := awshttp.NewBuildableClient().
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 0
			tr.MaxIdleConnsPerHost = cfg.Files*cfg.PartConcurrency + 4
		}).
		WithReadTimeout(cfg.ReadTimeout)
	client := s3.New(cfg.S3.Options(), func(o *s3.Options) {
		o.HTTPClient = hc
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 5
			so.MaxBackoff = 5 * time.Second
		})
		// Ranged responses carry no whole-object checksum: the verifier checks the assembled file instead.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	ranges := s3.New(client.Options(), func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, withLargeReads)
	})
	tm := transfermanager.New(ranges, func(o *transfermanager.Options) {
		o.GetObjectType = tmtypes.GetObjectRanges
		o.PartSizeBytes = cfg.PartSize
		o.Concurrency = cfg.PartConcurrency
		o.DisableChecksumValidation = true
		o.PartBodyMaxRetries = 3
	})
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Fetcher{cfg: cfg, s3: client, tm: tm}
}

// Object is the object to fetch, as its record knows it. An empty ETag or a Size <= 0 means unknown; a known one that
// the object no longer has fails the fetch (the record is stale).
type Object struct {
	Key  string
	ETag string
	Size int64
}

// Target is where a file goes: a name in its folder (see Folders).
type Target struct {
	Dir  *os.Root
	Name string
}

// Result is what a successful Fetch got: a file already in place (Present) or a verified temp file that Commit puts in
// place (or Discard removes).
type Result struct {
	Present   bool // already on disk, whole: nothing fetched
	Size      int64
	Bytes     int64 // fetched
	ETag      string
	VersionID string
	Checksum  string // how the file was verified: "algorithm:value" or "size-only"
	staged    *staged
}

// Staged reports whether the file waits for Commit or Discard.
func (r Result) Staged() bool { return r.staged != nil }

// staged is a fetched and verified temp file, not yet in place: commit syncs it (when durable) and renames it.
type staged struct {
	f       *os.File
	t       Target
	tmp     string // name in t.Dir
	size    int64
	counted int64        // bytes reported to progress, taken back if the commit fails
	direct  *disk.Direct // O_DIRECT writes still under way (the commit waits for them), or nil
}

// Fetch fetches o into t, retrying transient errors; p (may be nil) follows the bytes. On success the file is in place
// (Present) or staged for Commit; on failure nothing is left behind.
func (fr *Fetcher) Fetch(ctx context.Context, o Object, t Target, p *progress.Counter) (Result, error) {
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		got, err := fr.fetch(ctx, o, t, p)
		if err == nil || ctx.Err() != nil || !transient(err) || attempt >= fr.cfg.Attempts {
			var pe permanent
			if errors.As(err, &pe) {
				err = pe.error
			}
			err = onDisk("", err)
			if err != nil && attempt > 1 {
				err = &lanes.FileError{Reason: fmt.Sprintf("%s (after %d tries)", lanes.Reason(err), attempt), Err: err}
			}
			return got, err
		}
		fr.cfg.Log.Info("retrying download", "s3_key", o.Key, "try", attempt, "error", err)
		if fr.cfg.Retried != nil {
			fr.cfg.Retried(err)
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(Jitter(backoff)):
		}
		backoff *= 2
	}
}

// Jitter returns a random duration in [d/2, d): retries of many files spread out instead of hitting the server
// together.
func Jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// fetch makes one attempt at one file:
//   - a file already at t with the object's size and checksum is kept (one HEAD, no GET);
//   - a small object (up to one part) comes in one GET that also carries its checksums;
//   - a large one is HEADed for its checksums, then fetched by the transfer manager in parallel ranged GETs pinned to
//     its ETag.
//
// Bytes go to a temp file next to the target, through the verifier, and the file is renamed into place only once
// verified.
func (fr *Fetcher) fetch(ctx context.Context, r Object, t Target, p *progress.Counter) (Result, error) {
	if st, err := t.Dir.Lstat(t.Name); err == nil && st.Mode().IsRegular() {
		m, err := fr.head(ctx, r)
		if err != nil {
			return Result{}, err
		}
		if st.Size() == m.size && verifyExisting(t, m.exp) == nil {
			p.AddDone(0, m.size) // verified in place: done without a transfer
			return Result{Present: true, Size: m.size, ETag: m.etag, VersionID: m.version, Checksum: m.exp.String()}, nil
		}
		return fr.fetchLarge(ctx, r, m, t, p) // wrong bytes on disk: fetch it again
	}
	if r.Size > 0 && r.Size <= fr.cfg.PartSize {
		return fr.fetchSmall(ctx, r, t, p)
	}
	m, err := fr.head(ctx, r)
	if err != nil {
		return Result{}, err
	}
	return fr.fetchLarge(ctx, r, m, t, p)
}

func verifyExisting(t Target, exp disk.Expected) error {
	f, err := t.Dir.Open(t.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	return disk.VerifyFile(f, exp)
}

func (fr *Fetcher) fetchSmall(ctx context.Context, r Object, t Target, p *progress.Counter) (Result, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(fr.cfg.Bucket), Key: aws.String(r.Key)}
	if r.ETag != "" {
		in.IfMatch = aws.String(`"` + r.ETag + `"`)
	}
	out, err := fr.s3.GetObject(ctx, in, withChecksums)
	if err != nil {
		return Result{}, describeS3(err, fr.cfg.Bucket, r.Key)
	}
	defer out.Body.Close()
	m := getMeta(out)
	if err := fr.matches(r, m); err != nil {
		return Result{}, err
	}
	return fr.write(t, m, p, func(w countingWriterAt) error {
		_, err := w.ReadFromAt(out.Body, 0)
		if err != nil {
			return &lanes.FileError{Reason: fmt.Sprintf("S3 broke off the transfer of s3://%s/%s", fr.cfg.Bucket, r.Key), Err: err}
		}
		return nil
	})
}

func (fr *Fetcher) fetchLarge(ctx context.Context, r Object, m objectMeta, t Target, p *progress.Counter) (Result, error) {
	return fr.write(t, m, p, func(w countingWriterAt) error {
		if m.size == 0 {
			return nil
		}
		_, err := fr.tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{
			Bucket:   aws.String(fr.cfg.Bucket),
			Key:      aws.String(r.Key),
			IfMatch:  aws.String(`"` + m.etag + `"`), // every range from the same object, or a 412
			WriterAt: w,
		})
		if err != nil {
			return describeS3(err, fr.cfg.Bucket, r.Key)
		}
		return nil
	})
}
