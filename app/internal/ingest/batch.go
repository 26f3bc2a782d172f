package ingest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/ledger"
)

// aggregator merges fetched files into batches and commits them.
type aggregator struct {
	svc     *Service
	res     Result
	batch   flight.Aggregate
	entries []entry
	snaps   map[time.Time]string // snapshot time → key, in the uncommitted batch
	touched map[string]struct{}  // aircraft updated by committed batches
	read    bool                 // an object of the run was read from S3
	refused []fetched            // refused by S3 before any was read

	quarantined map[string]int // files quarantined, by reason class
	told        told           // what Metrics was told so far
}

// entry is a file of the uncommitted batch: its ledger entry and the object to read it again from.
type entry struct {
	ledger.Processed
	obj   bucket.Object
	drop  bool   // changed since listed: left for the next run
	class string // of a quarantined file: the kind of its reason
}

func (s *Service) newAggregator(prefix string) *aggregator {
	return &aggregator{
		svc: s,
		res: Result{Bucket: s.Bucket.Name, Prefix: prefix, SkippedByReason: map[string]int{}, Skipped: []FileNote{},
			Failed: []FileNote{}, InvalidValues: map[string]int64{}},
		batch:   make(flight.Aggregate),
		snaps:   make(map[time.Time]string),
		touched: make(map[string]struct{}),

		quarantined: map[string]int{},
		told:        told{skipped: map[string]int{}, quarantined: map[string]int{}},
	}
}

func (a *aggregator) add(ctx context.Context, f fetched) error {
	switch {
	case f.depErr != nil:
		return f.depErr
	case f.skip != "":
		a.res.FilesSeen++
		a.skipped(f.obj.Key, f.skip, f.skip)
		return nil
	case f.refused != "" && !a.read:
		a.refused = append(a.refused, f)
		if len(a.refused) >= maxRefusedBeforeRead {
			return a.everyRefused(ctx)
		}
		return nil
	case f.refused != "":
		a.res.FilesSeen++
		a.entries = append(a.entries, a.quarantine(f.obj, f.versionID, f.refused, classS3Refused))
		return a.maybeFlush(ctx)
	}
	if !a.read {
		// S3 gives objects: those it refused are refused for themselves.
		a.read = true
		for _, r := range a.refused {
			a.res.FilesSeen++
			a.entries = append(a.entries, a.quarantine(r.obj, r.versionID, r.refused, classS3Refused))
		}
		a.refused = nil
	}
	if f.err != nil {
		a.res.FilesSeen++
		a.entries = append(a.entries, a.quarantine(f.obj, f.versionID, f.err.Error(), decodeClass(f.err)))
		return a.maybeFlush(ctx)
	}
	return a.addFile(ctx, f)
}

// addFile adds a decoded file to the batch: its statistics, or its ledger entry as a duplicate when its snapshot (or,
// for a list, its bytes) was ingested already.
func (a *aggregator) addFile(ctx context.Context, f fetched) error {
	a.res.FilesSeen++
	a.res.Bytes += f.obj.Size
	e := entry{
		Processed: ledger.Processed{
			Object:     ledger.Object{Bucket: a.svc.Bucket.Name, Key: f.obj.Key, ETag: f.obj.ETag, VersionID: f.versionID, Size: f.obj.Size},
			Outcome:    ledger.Ingested,
			SnapshotAt: f.file.Now,
			SHA256:     f.sha256,
		},
		obj: f.obj,
	}
	outcome, note, err := a.repeats(ctx, e.Object, f)
	if err != nil {
		return err
	}
	if outcome != "" {
		e.Outcome = outcome
		a.entries = append(a.entries, e)
		a.skipped(f.obj.Key, reasonFor[outcome], note)
		return a.maybeFlush(ctx)
	}
	if !f.file.Now.IsZero() {
		a.snaps[f.file.Now] = f.obj.Key
	}
	e.Observations = f.file.Observations
	a.entries = append(a.entries, e)
	a.batch.Merge(f.file.Aircraft)
	a.res.FilesIngested++
	a.res.Observations += f.file.Observations
	for reason, n := range f.file.Invalid {
		a.res.InvalidValues[reason] += n
	}
	return a.maybeFlush(ctx)
}

// repeats returns the outcome of a file that repeats one already ingested or in the batch (with the note saying which),
// or "". The commit's claims have the last word: this only spares a batch the rounds of losing them.
func (a *aggregator) repeats(ctx context.Context, obj ledger.Object, f fetched) (ledger.Outcome, string, error) {
	if f.file.Now.IsZero() {
		// No snapshot time to recognise a repeat by: its bytes do.
		etag, ok, err := a.svc.DB.SameContent(ctx, obj, f.sha256)
		if err != nil || !ok {
			return "", "", a.svc.unavailableIf(ctx, "postgres", err)
		}
		return ledger.DuplicateContent, fmt.Sprintf("%s: the same bytes were ingested from its version with ETag %s",
			reasonDuplicateContent, etag), nil
	}
	dup, ok := a.snaps[f.file.Now]
	if !ok {
		var err error
		if dup, ok, err = a.svc.DB.SnapshotKey(ctx, f.file.Now); err != nil || !ok {
			return "", "", a.svc.unavailableIf(ctx, "postgres", err)
		}
	}
	return ledger.DuplicateSnapshot, fmt.Sprintf("%s: the snapshot of %s was already ingested from %s",
		reasonDuplicateSnapshot, f.file.Now.Format(time.RFC3339Nano), dup), nil
}

// everyRefused fails the run when S3 refused every object it fetched: S3 refusing them all says more about the role or
// the bucket than about the objects, and none is quarantined.
func (a *aggregator) everyRefused(ctx context.Context) error {
	if a.read || len(a.refused) == 0 {
		return nil
	}
	first := a.refused[0]
	return a.svc.unavailable(ctx, "s3", fmt.Errorf("S3 refused each of the %d objects the run fetched, none read; the first, %s: %s",
		len(a.refused), first.obj.Key, first.refused))
}

// quarantine counts a refused file and makes its ledger entry. class is the kind of reason, for the metrics (a bounded
// label; reason is free text).
func (a *aggregator) quarantine(obj bucket.Object, versionID, reason, class string) entry {
	a.res.FilesFailed++
	a.quarantined[class]++
	if len(a.res.Failed) < maxListedNotes {
		a.res.Failed = append(a.res.Failed, FileNote{Key: obj.Key, Reason: reason})
	}
	a.svc.logger().Warn("file quarantined", "key", obj.Key, "etag", obj.ETag, "reason", reason)
	return entry{
		Processed: ledger.Processed{
			Object:  ledger.Object{Bucket: a.svc.Bucket.Name, Key: obj.Key, ETag: obj.ETag, VersionID: versionID, Size: obj.Size},
			Outcome: ledger.Failed,
			Reason:  reason,
		},
		obj:   obj,
		class: class,
	}
}

// unfail takes back a file counted as quarantined.
func (a *aggregator) unfail(key, class string) {
	a.res.FilesFailed--
	a.quarantined[class]--
	a.res.Failed = slices.DeleteFunc(a.res.Failed, func(n FileNote) bool { return n.Key == key })
}

func (a *aggregator) skipped(key, reason, note string) {
	a.res.FilesSkipped++
	a.res.SkippedByReason[reason]++
	if len(a.res.Skipped) < maxListedNotes {
		a.res.Skipped = append(a.res.Skipped, FileNote{Key: key, Reason: note})
	}
}
