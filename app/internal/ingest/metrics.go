package ingest

import (
	"strings"
	"time"

	"github.com/aircraftdata/platform/app/internal/readsb"
)

// Metrics is told what ingestion did (package metrics implements it). Its labels are bounded: outcomes, skip reasons
// and reason classes are this package's constants, never a key or a database's words.
type Metrics interface {
	// IngestCommitted counts the files that ended since the last call, once their ledger entries are committed (or,
	// skipped before any batch, once the run ends): files by outcome ("ingested", "quarantined", "skipped_" and the
	// skip reason), quarantined files by reason class, bytes decoded and observations.
	IngestCommitted(files, quarantined map[string]int, bytes, observations int64)
	// IngestCommit observes the time of one commit (one transaction).
	IngestCommit(d time.Duration)
	// IngestBisected counts a batch the database refused, bisected.
	IngestBisected()
}

// Reason classes of quarantined files.
const (
	classS3Refused       = "s3_refused"       // S3 refused the object (denied, encrypted with a key the role cannot use)
	classOverCap         = "over_cap"         // over one of the INGEST_MAX_* caps
	classCorrupt         = "corrupt"          // not flight data, truncated, bad JSON or gzip
	classDatabaseRefused = "database_refused" // the database refused the file's statistics
)

// decodeClass is the reason class of a file the decoder refused.
func decodeClass(err error) string {
	if readsb.OverCap(err) {
		return classOverCap
	}
	return classCorrupt
}

// told is what the run's Metrics was told: the run's counts then.
type told struct {
	ingested, failed    int
	skipped             map[string]int
	quarantined         map[string]int
	bytes, observations int64
}

// tell tells the service's Metrics what ended since the last call: called when nothing counted is left uncommitted
// (after a flush, at the end).
func (a *aggregator) tell() {
	m := a.svc.Metrics
	if m == nil {
		return
	}
	files := map[string]int{}
	add := func(to map[string]int, k string, n int) {
		if n > 0 {
			to[k] += n
		}
	}
	add(files, "ingested", a.res.FilesIngested-a.told.ingested)
	add(files, "quarantined", a.res.FilesFailed-a.told.failed)
	for reason, n := range a.res.SkippedByReason {
		add(files, "skipped_"+strings.ReplaceAll(reason, " ", "_"), n-a.told.skipped[reason])
		a.told.skipped[reason] = n
	}
	quarantined := map[string]int{}
	for class, n := range a.quarantined {
		add(quarantined, class, n-a.told.quarantined[class])
		a.told.quarantined[class] = n
	}
	bytes, obs := max(a.res.Bytes-a.told.bytes, 0), max(a.res.Observations-a.told.observations, 0)
	a.told.ingested, a.told.failed, a.told.bytes, a.told.observations = a.res.FilesIngested, a.res.FilesFailed, a.res.Bytes, a.res.Observations
	m.IngestCommitted(files, quarantined, bytes, obs)
}

// timeCommit tells Metrics how long a commit took.
func (s *Service) timeCommit(start time.Time) {
	if s.Metrics != nil {
		s.Metrics.IngestCommit(time.Since(start))
	}
}

// bisected tells Metrics of a bisected batch.
func (s *Service) bisected() {
	if s.Metrics != nil {
		s.Metrics.IngestBisected()
	}
}
