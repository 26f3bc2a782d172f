// Package backfill ingests history: every object under a key prefix, or under the day folders of a date range, in
// batches of keys run side by side.
//
// A backfill is started, watched and stopped through a Manager, which keeps it in a Store (PostgreSQL, so that any
// instance answers for it) and runs it with a Runner: inprocess.Runner runs the batches in this process with bounded
// concurrency (the default, and what `make dev` and the tests use); StepFunctions starts an execution of a state
// machine whose Distributed Map runs the same batches in AWS Lambda workers. Either way a batch is
// ingest.Service.Process over at most 200 keys: committed whole or not at all, and a file counts once however many
// backfills and API runs overlap.
package backfill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
)

// State is where a backfill is.
type State string

const (
	Running   State = "running"
	Succeeded State = "succeeded" // every batch done, failures within the tolerated share
	Failed    State = "failed"    // too many batches failed, the listing failed, or its instance was lost
	Stopped   State = "stopped"   // DELETE, or the service shut down
)

// ErrFull means as many backfills as allowed run already.
var ErrFull = errors.New("backfill: too many backfills are running")

// InstanceLost is the error of an in-process backfill whose instance stopped renewing it: it is answered failed; a new
// backfill over the same keys goes on where it stopped (the ledger skips what it committed).
const InstanceLost = "instance lost: start the backfill again to go on"

// maxDays bounds a date range (ten years of day folders).
const maxDays = 3660

// MaxBatchSize is the largest batch: ingest commits up to 200 files in one transaction, so a batch of at most that many
// is committed whole or not at all.
const MaxBatchSize = 200

// Request says what a backfill ingests: every object under Prefix, or, with From and To (days, YYYY-MM-DD, both
// included), every object under the day folders Prefix+"YYYY/MM/DD/" of the range (readsb-hist's layout).
type Request struct {
	Prefix string `json:"prefix" maxLength:"1024" doc:"key prefix; with from and to, the root of the day folders YYYY/MM/DD/"`
	From   string `json:"from,omitempty" pattern:"^[0-9]{4}-[0-9]{2}-[0-9]{2}$" doc:"first day (UTC, YYYY-MM-DD) of a date range"`
	To     string `json:"to,omitempty" pattern:"^[0-9]{4}-[0-9]{2}-[0-9]{2}$" doc:"last day, included"`
}

// Prefixes returns the key prefixes of r, in key order, or why r is wrong.
func (r Request) Prefixes() ([]string, error) {
	if r.From == "" && r.To == "" {
		return []string{r.Prefix}, nil
	}
	from, err1 := time.Parse(time.DateOnly, r.From)
	to, err2 := time.Parse(time.DateOnly, r.To)
	if err := errors.Join(err1, err2); err != nil {
		return nil, errors.New("from and to must both be days, YYYY-MM-DD")
	}
	days := int(to.Sub(from).Hours()/24) + 1
	if days < 1 || days > maxDays {
		return nil, fmt.Errorf("from..to must be 1 to %d days", maxDays)
	}
	ps := make([]string, days)
	for i := range ps {
		ps[i] = r.Prefix + from.AddDate(0, 0, i).Format("2006/01/02/")
	}
	return ps, nil
}

// Progress counts what a backfill did. In-process backfills count everything; a Step Functions execution reports
// batches and files only (the workers' bytes and observations are in their logs).
type Progress struct {
	ListingDone   bool  `json:"listing_done" doc:"every key has been listed: batches_listed is the total"`
	BatchesListed int64 `json:"batches_listed"`
	BatchesDone   int64 `json:"batches_done"`
	BatchesFailed int64 `json:"batches_failed"`
	Files         int64 `json:"files" doc:"files of the batches done"`
	FilesIngested int64 `json:"files_ingested"`
	FilesFailed   int64 `json:"files_failed" doc:"files quarantined"`
	Bytes         int64 `json:"bytes"`
	Observations  int64 `json:"observations"`
}

// FailedBatch is a batch that failed after its retries: its keys (the first and the last, in key order), how many, and
// why.
type FailedBatch struct {
	First string `json:"first"`
	Last  string `json:"last"`
	Files int    `json:"files"`
	Error string `json:"error"`
}

// Backfill is a backfill as the API answers it.
type Backfill struct {
	ID      string  `json:"id"`
	Bucket  string  `json:"bucket"`
	Request Request `json:"request"`
	State   State   `json:"state"`
	Runner  string  `json:"runner" doc:"local (batches run by the service) or stepfunctions"`
	// Execution is the Step Functions execution's ARN.
	Execution   string `json:"execution,omitempty"`
	BatchSize   int    `json:"batch_size"`
	Concurrency int    `json:"concurrency"`
	Progress
	// FailedBatches lists the first MaxFailedListed failed batches.
	FailedBatches    []FailedBatch `json:"failed_batches"`
	EstimatedCostUSD float64       `json:"estimated_cost_usd" doc:"what the bytes and files so far cost on Step Functions and Lambda (docs/ingestion.md)"`
	Error            string        `json:"error,omitempty"`
	StopRequested    bool          `json:"stop_requested"`
	Started          time.Time     `json:"started"`
	Finished         *time.Time    `json:"finished,omitempty"`
}

// MaxFailedListed bounds the failed batches a backfill keeps.
const MaxFailedListed = 1000

// Delta is what a batch (or the listing) adds to a backfill's progress.
type Delta struct {
	Progress
	Failed *FailedBatch
}

// Store keeps backfills (postgres/backfillstore).
type Store interface {
	// CreateBackfill inserts b, running, unless maxRunning backfills run already (ErrFull).
	CreateBackfill(ctx context.Context, b Backfill, maxRunning int, lease time.Duration) error
	// LoadBackfill reads a backfill; a running one whose lease ran out reads as failed InstanceLost.
	LoadBackfill(ctx context.Context, id string) (Backfill, bool, error)
	// AddProgress adds d to a running backfill, renews its lease and reports whether it was asked to stop.
	AddProgress(ctx context.Context, id string, d Delta, lease time.Duration) (stop bool, err error)
	// SaveProgress replaces the progress of a running backfill (a runner that counts elsewhere).
	SaveProgress(ctx context.Context, id string, p Progress, failed []FailedBatch) error
	// EndBackfill saves how a running backfill ended.
	EndBackfill(ctx context.Context, id string, s State, errText string) error
	// RequestStop marks a backfill to stop and reports whether it exists.
	RequestStop(ctx context.Context, id string) (bool, error)
	// RunningBackfills lists the backfills running (leases not run out).
	RunningBackfills(ctx context.Context) ([]string, error)
}

// Runner runs backfills: inprocess.Runner or StepFunctions.
type Runner interface {
	// Name is what Backfill.Runner says.
	Name() string
	// Start runs b (already stored, running) in the background, setting b.Execution when it has one.
	Start(ctx context.Context, b *Backfill) error
	// Refresh brings a running b's progress and state up to date from where it runs and saves them; the in-process
	// runner's are saved as they change.
	Refresh(ctx context.Context, b *Backfill) error
	// Stop stops b (its stop is already requested in the Store).
	Stop(ctx context.Context, b Backfill) error
}

// Cost is the estimate of what a backfill costs when it runs on Step Functions and Lambda, in USD (docs/ingestion.md
// "What a backfill costs").
type Cost struct {
	PerGB    float64 // Lambda time to fetch, decode and commit 1 GB (1e9 bytes)
	PerFile  float64 // one S3 GET
	PerBatch float64 // the state transitions of one batch
}

// Estimate is the cost of p.
func (c Cost) Estimate(p Progress) float64 {
	batches := p.BatchesDone + p.BatchesFailed
	usd := float64(p.Bytes)/1e9*c.PerGB + float64(p.Files)*c.PerFile + float64(batches)*c.PerBatch
	return math.Round(usd*1e6) / 1e6
}

// Limits bound backfills.
type Limits struct {
	MaxRunning  int           // BACKFILL_MAX_RUNNING: backfills running at once (all instances)
	BatchSize   int           // BACKFILL_BATCH_SIZE: keys per batch, at most MaxBatchSize
	Concurrency int           // BACKFILL_CONCURRENCY: batches at once per backfill
	Retries     int           // BACKFILL_RETRIES: retries of a batch whose dependency failed
	Backoff     time.Duration // first wait between retries, doubled each time
	// ToleratedFailurePercent of the batches may fail; more fail the backfill (BACKFILL_TOLERATED_FAILURE_PERCENT).
	ToleratedFailurePercent int
	Lease                   time.Duration // a running in-process backfill not renewed this long is lost
}

// Check reports what is wrong with l.
func (l Limits) Check() error {
	if l.MaxRunning < 1 || l.BatchSize < 1 || l.BatchSize > MaxBatchSize || l.Concurrency < 1 || l.Retries < 0 ||
		l.Backoff <= 0 || l.ToleratedFailurePercent < 0 || l.ToleratedFailurePercent > 100 || l.Lease <= 0 {
		return fmt.Errorf("backfill: limits out of range (batch size 1..%d, the rest positive): %+v", MaxBatchSize, l)
	}
	return nil
}

// Manager starts, answers and stops backfills.
type Manager struct {
	Store  Store
	Runner Runner
	Bucket string
	Limits Limits
	Cost   Cost
	Log    *slog.Logger
}

// RequestError is a request that cannot be run: its message says why.
type RequestError struct{ Reason string }

func (e *RequestError) Error() string { return e.Reason }

// Start stores a new backfill of req and starts it, or fails with ErrFull or a *RequestError.
func (m *Manager) Start(ctx context.Context, req Request) (Backfill, error) {
	if _, err := req.Prefixes(); err != nil {
		return Backfill{}, &RequestError{err.Error()}
	}
	if strings.TrimSpace(req.Prefix) == "" && req.From == "" {
		return Backfill{}, &RequestError{"a backfill of the whole bucket needs prefix (it may not be empty)"}
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	b := Backfill{
		ID: hex.EncodeToString(id[:]), Bucket: m.Bucket, Request: req, State: Running, Runner: m.Runner.Name(),
		BatchSize: m.Limits.BatchSize, Concurrency: m.Limits.Concurrency, FailedBatches: []FailedBatch{},
		Started: time.Now().UTC(),
	}
	err := m.Store.CreateBackfill(ctx, b, m.Limits.MaxRunning, m.Limits.Lease)
	if errors.Is(err, ErrFull) {
		// A backfill that runs elsewhere (Step Functions) is known to have ended only once asked: ask the running ones,
		// then try again.
		if err = m.refreshRunning(ctx); err == nil {
			err = m.Store.CreateBackfill(ctx, b, m.Limits.MaxRunning, m.Limits.Lease)
		}
	}
	if err != nil {
		return Backfill{}, err
	}
	if err := m.Runner.Start(ctx, &b); err != nil {
		err = fmt.Errorf("backfill: start: %w", err)
		if endErr := m.Store.EndBackfill(context.WithoutCancel(ctx), b.ID, Failed, "could not start"); endErr != nil {
			err = errors.Join(err, endErr)
		}
		return Backfill{}, err
	}
	return m.load(ctx, b.ID)
}

// refreshRunning brings the running backfills up to date.
func (m *Manager) refreshRunning(ctx context.Context) error {
	ids, err := m.Store.RunningBackfills(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, _, err := m.Get(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) load(ctx context.Context, id string) (Backfill, error) {
	b, ok, err := m.Store.LoadBackfill(ctx, id)
	if err == nil && !ok {
		err = fmt.Errorf("backfill %s: gone", id)
	}
	return b, err
}

// Get answers a backfill, its progress brought up to date.
func (m *Manager) Get(ctx context.Context, id string) (Backfill, bool, error) {
	b, ok, err := m.Store.LoadBackfill(ctx, id)
	if err != nil || !ok {
		return b, ok, err
	}
	if b.State == Running && b.Runner == m.Runner.Name() {
		if err := m.Runner.Refresh(ctx, &b); err != nil {
			return b, true, err
		}
	}
	b.EstimatedCostUSD = m.Cost.Estimate(b.Progress)
	return b, true, nil
}

// Stop asks a backfill to stop: no batch starts any more, those under way end (each whole or not at all). It answers
// the backfill as it is then.
func (m *Manager) Stop(ctx context.Context, id string) (Backfill, bool, error) {
	ok, err := m.Store.RequestStop(ctx, id)
	if err != nil || !ok {
		return Backfill{}, ok, err
	}
	b, ok, err := m.Get(ctx, id)
	if err != nil || !ok {
		return b, ok, err
	}
	if b.State == Running {
		if err := m.Runner.Stop(ctx, b); err != nil {
			return b, true, err
		}
	}
	return m.Get(ctx, id)
}
