package download

import (
	"errors"
	"time"

	"github.com/aircraftdata/platform/app/internal/download/fetch/disk"
)

// Metrics is told what downloads did (package metrics implements it). Its labels are bounded: outcomes are this
// package's, never a key.
type Metrics interface {
	// DownloadFileEnded counts a file as the answer reports it: outcome "downloaded", "already_present" or "failed",
	// bytes fetched, and whether it failed for bytes that did not match the object's checksum.
	DownloadFileEnded(outcome string, bytes int64, checksumFailed bool)
	// DownloadRetried counts a try repeated after a transient error, and whether that error was a checksum mismatch.
	DownloadRetried(checksumFailed bool)
	// DownloadResumed counts a file started again after an earlier download of it (its record counts attempts).
	DownloadResumed()
	// DownloadHour observes the time of one hour's download.
	DownloadHour(d time.Duration)
}

func retried(m Metrics) func(error) {
	if m == nil {
		return nil
	}
	return func(err error) { m.DownloadRetried(errors.Is(err, disk.ErrMismatch)) }
}

// tell tells the Metrics how the run's files ended, once it has ended.
func (r *run) tell(took time.Duration) {
	m := r.d.cfg.Metrics
	if m == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fr := range r.results {
		switch {
		case fr.err != nil:
			m.DownloadFileEnded("failed", fr.bytes, errors.Is(fr.err, disk.ErrMismatch))
		case fr.file.Outcome == OutcomeAlreadyPresent:
			m.DownloadFileEnded("already_present", fr.bytes, false)
		default:
			m.DownloadFileEnded("downloaded", fr.bytes, false)
		}
	}
	m.DownloadHour(took)
}
