// Package download downloads the files of a lane hour: it selects the hour's records, claims the hour, hands each file
// to the engine (package fetch: S3 object → verified, durable file) and records what happened.
//
// A download request names a lane and an hour. The hour is claimed in the store first (an atomic claim with an expiring
// lease, renewed while the download runs, so that two requests never fetch the same file at once); a download that
// loses its claim stops and writes nothing more. The hour's records are read a batch at a time and handed to a
// process-wide pool of workers (Config.Workers files in flight across all requests), whose fetched files are put in
// place by committers while the workers go on. Status changes are written in batches (package record). A cancelled
// download (shutdown) ends every record of the run failed with the cancellation's cause and lets the claim go before
// returning.
package download

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aircraftdata/platform/app/internal/download/fetch"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// Records reads and writes the file records (package mongo). The status rules are package lanes's: a store persists
// what lanes.Change.Apply makes of a record.
type Records interface {
	// ForHour hands fn the records of hour h a batch at a time, in no particular order, and stops at the first error.
	// It reads what the latest writes left (no stale replica).
	ForHour(ctx context.Context, h lanes.Hour, fn func([]lanes.Record) error) error
	// Update writes a batch of status changes (each record's fields that lanes.Change.Apply sets) in as few round trips
	// as the store allows. It refuses a batch with a change lanes.Change.Check rejects. It is not atomic across
	// records: on an error some may have been written.
	Update(ctx context.Context, cs []lanes.Change, now time.Time) error
}

// Claims are the leases that keep two downloads of one hour apart (package mongo).
type Claims interface {
	// Claim claims name for owner until now+lease, atomically: of owners claiming at once, one wins. A claim whose
	// lease has expired is taken over, also atomically, and only as it was read: a claim renewed meanwhile is not
	// taken. false means another owner holds it.
	Claim(ctx context.Context, name, owner string, now time.Time, lease time.Duration) (bool, error)
	// Renew extends owner's claim on name to until. It returns an error wrapping lanes.ErrClaimLost when owner no
	// longer holds it.
	Renew(ctx context.Context, name, owner string, until time.Time) error
	// Release lets owner's claim on name go (and nobody else's).
	Release(ctx context.Context, name, owner string) error
}

// Tuning of the engine, for Config fields left zero. They are not settings: Workers and Lease are (DOWNLOAD_WORKERS,
// DOWNLOAD_CLAIM_LEASE_SECONDS), and their defaults are package config's.
const (
	defaultPartSize        = 50 << 20 // as s5cmd: measured best here with 5 ranges at once (bench-download)
	defaultPartConcurrency = 5
	defaultAttempts        = 3
	defaultReadTimeout     = 30 * time.Second
)

// Config configures a Downloader.
type Config struct {
	Records Records
	Claims  Claims     // may be the same store as Records (mongo.Store is both)
	S3      *s3.Client // the service's client; the engine derives its own transport from it
	Bucket  string     // SOURCE_BUCKET
	Root    string     // DOWNLOAD_PATH: nothing is ever written outside it

	Workers int           // required: files fetched at once, across all requests of the process
	Lease   time.Duration // required: how long a claim holds without renewal (renewed every Lease/3)

	// Wait is how long Download waits for an hour that another download holds (DOWNLOAD_WAIT_SECONDS); zero: it does
	// not wait (ErrBusy).
	Wait time.Duration
	// Stall is how long a run may go without progress (a byte written, a file ended) while it has files under way
	// before it gives its hour up (DOWNLOAD_STALL_SECONDS); zero: Lease.
	Stall time.Duration
	// Reserve is the free space a file must leave on DOWNLOAD_PATH's file system (DOWNLOAD_RESERVE_BYTES); MaxObject
	// the biggest object downloaded (DOWNLOAD_MAX_OBJECT_BYTES; 0: no cap).
	Reserve   int64
	MaxObject int64

	// Zero: the engine's tuning above.
	PartSize        int64         // bytes per ranged GET
	PartConcurrency int           // ranged GETs at once per file
	Attempts        int           // tries per file on transient errors
	ReadTimeout     time.Duration // a connection idle this long is dropped (and the range retried)

	// Durable syncs each file to disk before renaming it into place, and its folder after, before the file is reported
	// downloaded, so that "whole or not at all" holds across a power loss or an instance crash, not only a process
	// crash: without it the rename can reach the disk before the data, leaving a whole-looking file of zeros or a
	// partial one that the record calls downloaded (the next request would find it wrong by its checksum and fetch it
	// again, but a reader in between would not).
	//
	// Durable files are written with O_DIRECT (package fetch) and their folders synced once per status batch (package
	// record), which made durability nearly free on the 2-core dev machine: the durable service runs at the speed of
	// the one without fsync (docs/downloads.md). It is the default (DOWNLOAD_FSYNC=true); turn it off only where files
	// are scratch copies that a rerun repairs.
	Durable bool

	Log *slog.Logger

	Metrics Metrics // told what happened; nil: nobody
}

// engine is what the orchestration needs of package fetch.
type engine interface {
	Fetch(ctx context.Context, o fetch.Object, t fetch.Target, p *progress.Counter) (fetch.Result, error)
	Commit(res fetch.Result, p *progress.Counter, fence func() error) error
	Discard(res fetch.Result, p *progress.Counter)
}

// Downloader downloads the files of lane hours.
type Downloader struct {
	cfg    Config
	engine engine
	root   *os.Root
	abs    string // absolute DOWNLOAD_PATH, for the records' local_path
	now    func() time.Time
	id     string // this instance, in lease owners
	seq    atomic.Int64

	// Process-wide bounds, shared by every request: files being fetched (Workers), and fetched files waiting for their
	// commit or in it (2 × Workers: each holds an open file and maybe O_DIRECT buffers).
	fetching chan struct{}
	staged   chan struct{}

	// holding has the hours claimed (or being claimed) by a request of this process; the channel is closed when it lets
	// the hour go, which wakes the requests of this process waiting for it (see Claim).
	mu      sync.Mutex
	holding map[string]chan struct{}
}

// New prepares a downloader: it creates DOWNLOAD_PATH if needed and keeps it open as an os.Root, through which every
// file operation goes, so that no name (nor a symlink planted below the root) can reach outside it.
func New(cfg Config) (*Downloader, error) {
	if cfg.Records == nil || cfg.Claims == nil || cfg.S3 == nil || cfg.Bucket == "" || cfg.Root == "" {
		return nil, errors.New("download: Records, Claims, S3, Bucket and Root are required")
	}
	if cfg.Workers <= 0 || cfg.Lease <= 0 {
		return nil, errors.New("download: Workers and Lease are required (DOWNLOAD_WORKERS, DOWNLOAD_CLAIM_LEASE_SECONDS)")
	}
	cfg.PartSize = orDefault(cfg.PartSize, defaultPartSize)
	cfg.PartConcurrency = orDefault(cfg.PartConcurrency, defaultPartConcurrency)
	cfg.Attempts = orDefault(cfg.Attempts, defaultAttempts)
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, defaultReadTimeout)
	cfg.Stall = orDefault(cfg.Stall, cfg.Lease)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("download: DOWNLOAD_PATH: %w", err)
	}
	abs, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("download: DOWNLOAD_PATH: %w", err)
	}
	eng := fetch.New(fetch.Config{
		S3: cfg.S3, Bucket: cfg.Bucket, Files: cfg.Workers, PartSize: cfg.PartSize, PartConcurrency: cfg.PartConcurrency,
		Attempts: cfg.Attempts, ReadTimeout: cfg.ReadTimeout, Durable: cfg.Durable, Log: cfg.Log, Retried: retried(cfg.Metrics),
		Volume: abs, Reserve: cfg.Reserve, MaxObject: cfg.MaxObject,
	})
	var b [4]byte
	_, _ = crand.Read(b[:])
	return &Downloader{cfg: cfg, engine: eng, root: root, abs: abs, now: time.Now, id: hex.EncodeToString(b[:]),
		fetching: make(chan struct{}, cfg.Workers), staged: make(chan struct{}, 2*cfg.Workers),
		holding: map[string]chan struct{}{}}, nil
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Close releases DOWNLOAD_PATH.
func (d *Downloader) Close() error { return d.root.Close() }

// Root is the absolute DOWNLOAD_PATH.
func (d *Downloader) Root() string { return d.abs }

// Outcomes of a successful file.
const (
	OutcomeDownloaded     = "downloaded"
	OutcomeAlreadyPresent = "already present"
)

// File is a successfully downloaded (or already present) file: its record as stored after the download, and what
// happened.
type File struct {
	lanes.Record
	Outcome string `json:"outcome" enum:"downloaded,already present" doc:"already present: the file on disk had the object's size and checksum, nothing was fetched"`
}

// Failure is a file that could not be downloaded, and why.
type Failure struct {
	Key    string `json:"s3_key"`
	Reason string `json:"reason"`
}

// HourResult is the answer to a download request: the seed's shape (successful, failed, total_files, success_count,
// failure_count) plus the reason of each failure.
type HourResult struct {
	Successful     []File    `json:"successful"`
	Failed         []string  `json:"failed" doc:"keys of the files that failed"`
	Failures       []Failure `json:"failures" doc:"the failed files with the reason of each"`
	TotalFiles     int       `json:"total_files"`
	SuccessCount   int       `json:"success_count"`
	FailureCount   int       `json:"failure_count"`
	Downloaded     int       `json:"downloaded_count" doc:"successful files actually fetched"`
	AlreadyPresent int       `json:"already_present_count" doc:"successful files that were already on disk, whole"`
	Bytes          int64     `json:"bytes_downloaded"`
	Seconds        float64   `json:"duration_seconds"`
}
