package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/panics"
)

func (a *aggregator) maybeFlush(ctx context.Context) error {
	if len(a.batch) >= batchAircraft || len(a.entries) >= batchFiles {
		return a.flush(ctx)
	}
	return nil
}

// flush commits the batch with its ledger entries in one transaction. If the database refuses it, bisect finds the
// files responsible.
func (a *aggregator) flush(ctx context.Context) error {
	if len(a.entries) == 0 {
		return nil
	}
	err := a.commit(ctx, a.entries, a.batch)
	if refused(err) {
		a.svc.logger().Warn("the database refused a batch: finding the files responsible", "files", len(a.entries), "error", err)
		a.svc.bisected()
		err = a.bisectKeepingDuplicates(ctx, err)
	}
	if err != nil {
		return err
	}
	a.svc.logger().Info("batch committed", "files", len(a.entries), "aircraft", len(a.batch))
	a.tell()
	a.batch = make(flight.Aggregate)
	a.entries = nil
	clear(a.snaps)
	return nil
}

// commit stores entries and agg in one transaction. It returns the database's refusal as is, any other failure as
// UnavailableError.
//
// Files of entries that another run committed first (ledger.LostError) are set aside: their ledger entry, snapshot or
// content stands from that run. The batch is then committed again without their statistics, which the aggregate holds
// merged: the files kept are read again from S3 (their ETags pinned) rather than each file's statistics kept apart,
// which would cost up to a whole file's aircraft per file of the batch. Runs overlap rarely, and each round sets aside
// at least one file, so this ends.
func (a *aggregator) commit(ctx context.Context, entries []entry, agg flight.Aggregate) error {
	for {
		objs := make([]ledger.Processed, 0, len(entries))
		at := make([]int, 0, len(entries)) // entries' index of each of objs
		for i, e := range entries {
			if !e.drop {
				objs = append(objs, e.Processed)
				at = append(at, i)
			}
		}
		start := time.Now()
		err := a.svc.DB.Commit(ctx, objs, agg)
		a.svc.timeCommit(start)
		var lost *ledger.LostError
		switch {
		case err == nil:
			for icao := range agg {
				a.touched[icao] = struct{}{}
			}
			return nil
		case refused(err):
			return err
		case !errors.As(err, &lost):
			return a.svc.unavailable(ctx, "postgres", err)
		}
		a.svc.logger().Info("files of the batch were committed by another run: committing it without them",
			"files", len(lost.Lost))
		reread := false
		for _, l := range lost.Lost {
			e := &entries[at[l.Index]]
			reread = reread || e.Outcome == ledger.Ingested
			a.setAside(e, l)
		}
		if reread && agg != nil {
			if agg, err = a.reread(ctx, entries); err != nil {
				return err
			}
		}
	}
}

// setAside records that another run committed e's file (its ledger entry, or its snapshot or content), and undoes what
// the run counted for it.
func (a *aggregator) setAside(e *entry, l ledger.Lost) {
	key := e.obj.Key
	switch e.Outcome {
	case ledger.Ingested:
		a.res.FilesIngested--
		a.res.Observations -= e.Observations
	case ledger.Failed:
		a.unfail(key, e.class)
	}
	from := reasonFor[e.Outcome]
	note := func(reason, note string) {
		if from == "" {
			a.skipped(key, reason, note)
		} else {
			a.unskip(key, from, reason, note)
		}
	}
	switch l.Outcome {
	case ledger.DuplicateSnapshot:
		e.Outcome, e.Observations = ledger.DuplicateSnapshot, 0
		note(reasonDuplicateSnapshot, fmt.Sprintf("%s: the snapshot of %s was ingested from %s by another run at the same time",
			reasonDuplicateSnapshot, e.SnapshotAt.Format(time.RFC3339Nano), l.Source))
	case ledger.DuplicateContent:
		e.Outcome, e.Observations = ledger.DuplicateContent, 0
		note(reasonDuplicateContent, fmt.Sprintf("%s: the same bytes were ingested from its version with ETag %s by another run at the same time",
			reasonDuplicateContent, l.Source))
	default:
		e.drop = true
		note(reasonAlreadyIngested, reasonAlreadyIngested+": by another run at the same time")
	}
}

// reasonFor is the skip reason counted for a file recorded with an outcome.
var reasonFor = map[ledger.Outcome]string{
	ledger.DuplicateSnapshot: reasonDuplicateSnapshot,
	ledger.DuplicateContent:  reasonDuplicateContent,
}

// refused reports whether err is the store refusing the data it was given.
func refused(err error) bool { return errors.As(err, new(*ledger.RefusedError)) }

// refusalReason is the store's own words for a refusal.
func refusalReason(err error) string {
	var r *ledger.RefusedError
	if errors.As(err, &r) {
		return r.Reason
	}
	return err.Error()
}

// bisectKeepingDuplicates bisects the refused batch with its duplicate snapshots set aside, then records those whose
// snapshot was committed as duplicates. One whose snapshot came from a file of this batch that ended refused (or
// changed) is not recorded: it holds data of its own, and the next run reads it.
func (a *aggregator) bisectKeepingDuplicates(ctx context.Context, refusal error) error {
	var dups []entry
	for i := range a.entries {
		if e := &a.entries[i]; e.Outcome == ledger.DuplicateSnapshot && !e.drop {
			dups = append(dups, *e)
			e.drop = true
		}
	}
	if err := a.bisect(ctx, a.entries, refusal); err != nil {
		return err
	}
	if len(dups) == 0 {
		return nil
	}
	committed := map[time.Time]bool{}
	for _, e := range a.entries {
		if e.Outcome == ledger.Ingested && !e.drop {
			committed[e.SnapshotAt] = true
		}
	}
	for i := range dups {
		e := &dups[i]
		src, inBatch := a.snaps[e.SnapshotAt]
		if !inBatch || committed[e.SnapshotAt] {
			continue
		}
		e.drop = true
		a.unskip(e.obj.Key, reasonDuplicateSnapshot, reasonDuplicateRefused,
			fmt.Sprintf("%s: %s, whose snapshot it repeats, was not committed; the next run reads it", reasonDuplicateRefused, src))
	}
	if !slices.ContainsFunc(dups, func(e entry) bool { return !e.drop }) {
		return nil
	}
	err := a.commit(ctx, dups, nil)
	if refused(err) {
		return a.svc.unavailable(ctx, "postgres", err)
	}
	return err
}

// unskip moves a skipped file from one reason to another, with a new note.
func (a *aggregator) unskip(key, from, to, note string) {
	a.res.SkippedByReason[from]--
	if a.res.SkippedByReason[from] == 0 {
		delete(a.res.SkippedByReason, from)
	}
	a.res.SkippedByReason[to]++
	for i := range a.res.Skipped {
		if a.res.Skipped[i].Key == key {
			a.res.Skipped[i].Reason = note
		}
	}
}

// bisect commits the halves of a refused batch separately, each with the statistics of its files read again, and splits
// a refused half further, until a file refused on its own is quarantined with the database's reason. For one bad file
// among n this reads about 2n files; memory stays within the batch's (a half holds a subset of its aircraft).
func (a *aggregator) bisect(ctx context.Context, entries []entry, refusal error) error {
	var ingested []int
	for i, e := range entries {
		if e.Outcome == ledger.Ingested && !e.drop {
			ingested = append(ingested, i)
		}
	}
	if len(ingested) <= 1 {
		for _, i := range ingested {
			e := &entries[i]
			a.res.FilesIngested--
			a.res.Observations -= e.Observations
			*e = a.quarantine(e.obj, e.VersionID, refusalReason(refusal), classDatabaseRefused)
		}
		err := a.commit(ctx, entries, nil)
		if refused(err) {
			// The ledger entries themselves are refused: nothing of the files is to blame that we could set aside.
			return a.svc.unavailable(ctx, "postgres", err)
		}
		return err
	}
	mid := ingested[len(ingested)/2]
	for _, half := range [][]entry{entries[:mid], entries[mid:]} {
		agg, err := a.reread(ctx, half)
		if err != nil {
			return err
		}
		err = a.commit(ctx, half, agg)
		if refused(err) {
			err = a.bisect(ctx, half, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// reread fetches and decodes the ingested files of entries again, returning their statistics. A file that changed since
// is dropped from the ledger entries (the next run reads it), one that now fails is quarantined.
func (a *aggregator) reread(ctx context.Context, entries []entry) (flight.Aggregate, error) {
	agg := make(flight.Aggregate)
	for i := range entries {
		e := &entries[i]
		if e.Outcome != ledger.Ingested || e.drop {
			continue
		}
		f := a.svc.fetchContained(ctx, e.obj)
		var bug *panics.Error
		switch {
		case f.depErr != nil:
			return nil, f.depErr
		case errors.As(f.err, &bug):
			return nil, f.err
		case f.skip != "":
			a.res.FilesIngested--
			a.res.Observations -= e.Observations
			e.drop = true
		case f.refused != "":
			a.res.FilesIngested--
			a.res.Observations -= e.Observations
			*e = a.quarantine(e.obj, f.versionID, f.refused, classS3Refused)
		case f.err != nil:
			a.res.FilesIngested--
			a.res.Observations -= e.Observations
			*e = a.quarantine(e.obj, f.versionID, f.err.Error(), decodeClass(f.err))
		default:
			agg.Merge(f.file.Aircraft)
		}
	}
	return agg, nil
}
