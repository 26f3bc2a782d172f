package httpapi

import (
	"context"
	"time"

	"github.com/aircraftdata/platform/app/internal/backfill"
	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/ready"
)

// The handlers depend on the small interfaces below, declared here by their user: cmd/aircraftd wires the real adapters
// (postgres, ingest, mongo, download, jobs), the handler tests wire fakes.

// Statistics serves stored flight statistics (postgres.DB).
type Statistics interface {
	// Stats returns one aircraft's statistics, or flight.ErrNotFound.
	Stats(ctx context.Context, icao string) (*flight.Stats, error)
	// Aircraft returns up to limit aircraft after the address after, in order.
	Aircraft(ctx context.Context, after string, limit int) ([]flight.Aircraft, error)
}

// Readiness answers the last check of the service's dependencies (ready.Checker, which makes it in the background).
type Readiness interface {
	// Last returns the last check, or nil before the first.
	Last() *ready.Status
}

// Ingester starts ingestion runs (ingest.Service, through IngestService).
type Ingester interface {
	// Begin takes the lock of the prefix (one run of a prefix at a time), or fails with ingest.ErrBusy.
	Begin(ctx context.Context, prefix string) (IngestRun, error)
	// FailedFiles lists quarantined files by key, after the key after.
	FailedFiles(ctx context.Context, after string, limit int) ([]ledger.FailedFile, error)
}

// IngestRun is a run that holds the lock: Ingest releases it when done, Release when the run does not start. Ingest
// fails with *ingest.UnavailableError when a dependency is down.
type IngestRun interface {
	Ingest(ctx context.Context, req ingest.Request, p *progress.Counter) (*ingest.Result, error)
	Release()
}

// IngestService adapts ingest.Services to Ingester: runs start on work, FailedFiles reads through reads (the same
// service on the read pool, postgres.DB.Reads), so that listing never takes the work's connections.
func IngestService(work, reads *ingest.Service) Ingester { return ingestService{work, reads} }

type ingestService struct{ s, reads *ingest.Service }

func (i ingestService) Begin(ctx context.Context, prefix string) (IngestRun, error) {
	run, err := i.s.Begin(ctx, prefix)
	if err != nil {
		return nil, err // never a typed nil in the interface
	}
	return run, nil
}

func (i ingestService) FailedFiles(ctx context.Context, after string, limit int) ([]ledger.FailedFile, error) {
	return i.reads.FailedFiles(ctx, after, limit)
}

// Backfills starts, answers and stops backfills (backfill.Manager).
type Backfills interface {
	// Start fails with *backfill.RequestError or backfill.ErrFull.
	Start(ctx context.Context, req backfill.Request) (backfill.Backfill, error)
	Get(ctx context.Context, id string) (backfill.Backfill, bool, error)
	Stop(ctx context.Context, id string) (backfill.Backfill, bool, error)
}

// Jobs runs work in the background and answers for it (jobs.Registry).
type Jobs interface {
	// Start fails with jobs.ErrFull when too many jobs run.
	Start(kind, requestID string, fn jobs.Func) (jobs.View, error)
	// Run runs fn now, counted against the same cap: jobs.ErrFull when full.
	Run(ctx context.Context, fn func(context.Context) error) error
	Get(ctx context.Context, id string) (jobs.View, bool, error)
}

// Lanes is what the lane file endpoints need. When it is nil (no MONGODB_URL), they answer 503.
type Lanes struct {
	Store      FileStore
	Downloader Downloader
	Indexer    Indexer
}

// FileStore keeps the lane file records (mongo.Store).
type FileStore interface {
	Register(ctx context.Context, rs []lanes.Record, now time.Time) (lanes.RegisterResult, error)
	List(ctx context.Context, q lanes.Query) ([]lanes.Record, error)
}

// Downloader downloads the files of one lane and hour (download.Downloader, through Downloads).
type Downloader interface {
	// Claim claims the hour for one download. While another download holds it, Claim waits if wait is set (up to
	// DOWNLOAD_WAIT_SECONDS, holding no job slot), then fails with download.ErrBusy.
	Claim(ctx context.Context, h lanes.Hour, wait bool) (HourDownload, error)
}

// HourDownload is a claimed hour (download.Claim): downloaded once, or let go unrun.
type HourDownload interface {
	Download(ctx context.Context, p *progress.Counter) (*download.HourResult, error)
	Release()
}

// Downloads adapts a download.Downloader to Downloader.
func Downloads(d *download.Downloader) Downloader { return downloads{d} }

type downloads struct{ d *download.Downloader }

func (s downloads) Claim(ctx context.Context, h lanes.Hour, wait bool) (HourDownload, error) {
	c, err := s.d.Claim(ctx, h, wait)
	if err != nil {
		return nil, err // never a typed nil in the interface
	}
	return c, nil
}

// Indexer registers the lane files found in the bucket (download.Indexer).
type Indexer interface {
	Index(ctx context.Context, prefix string, p *progress.Counter) (*download.IndexResult, error)
}
