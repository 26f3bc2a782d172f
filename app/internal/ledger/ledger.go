// Package ledger is the vocabulary of the ingestion ledger: which object
// versions were processed, with what outcome, and why a file was refused.
// ingest writes it, postgres stores it, httpapi shows the quarantined files.
//
// It is a package of its own, not part of flight, because it is about
// objects in a bucket rather than about aircraft: flight stays the pure
// statistics domain.
package ledger

import (
	"errors"
	"time"
)

// ErrBusy means another ingestion holds the ingestion lock.
var ErrBusy = errors.New("another ingestion is running")

// Object identifies one stored object version.
type Object struct {
	Bucket, Key, ETag, VersionID string
	Size                         int64
}

// Outcome is what happened to an object in the ledger.
type Outcome string

const (
	Ingested          Outcome = "ingested"
	DuplicateSnapshot Outcome = "duplicate-snapshot"
	// DuplicateContent is a version of a key whose bytes were ingested
	// from another version of it (a list-format file re-uploaded).
	DuplicateContent Outcome = "duplicate-content"
	// Failed is a quarantined file: refused with a reason, skipped until its
	// ETag changes.
	Failed Outcome = "failed"
)

// Processed is one object's ledger entry.
type Processed struct {
	Object
	Outcome      Outcome
	SnapshotAt   time.Time // zero when the format has no snapshot time
	Observations int64
	Reason       string // why a Failed file was refused
	SHA256       []byte // of the object's bytes; nil when not read
}

// FailedFile is a quarantined file.
type FailedFile struct {
	Bucket    string    `json:"bucket"`
	Key       string    `json:"key"`
	ETag      string    `json:"etag"`
	VersionID string    `json:"version_id"`
	Size      int64     `json:"size"`
	Reason    string    `json:"reason"`
	FailedAt  time.Time `json:"failed_at"`
}

// RefusedError is the store refusing the data it was given (a value too
// large for its field, say), as opposed to the store being unavailable: the
// files responsible are to blame, and are quarantined with Reason.
type RefusedError struct {
	Reason string // the store's own words
	Err    error
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }
