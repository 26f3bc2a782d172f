// Package ledger is the vocabulary of the ingestion ledger: which object versions were processed, with what outcome,
// and why a file was refused. ingest writes it, postgres stores it, httpapi shows the quarantined files.
//
// It is a package of its own, not part of flight, because it is about objects in a bucket rather than about aircraft:
// flight stays the pure statistics domain.
package ledger

import (
	"errors"
	"fmt"
	"time"
)

// ErrBusy means another run of the API holds the lock of the same bucket and prefix.
var ErrBusy = errors.New("another ingestion of this prefix is running")

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
	// DuplicateContent is a version of a key whose bytes were ingested from another version of it (a list-format file
	// re-uploaded).
	DuplicateContent Outcome = "duplicate-content"
	// Failed is a quarantined file: refused with a reason, skipped until its ETag changes.
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

// RefusedError is the store refusing the data it was given (a value too large for its field, say), as opposed to the
// store being unavailable: the files responsible are to blame, and are quarantined with Reason.
type RefusedError struct {
	Reason string // the store's own words
	Err    error
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Lost is an object of a batch that another run claimed first: its ledger row (the same object version), its snapshot
// time or its bytes.
type Lost struct {
	Index int // in the batch given to Commit
	// Outcome is what the object now is: "" when its own ledger row stands (another run processed it),
	// DuplicateSnapshot or DuplicateContent when the snapshot or the bytes it holds were committed from Source.
	Outcome Outcome
	Source  string // bucket/key holding the snapshot, or the ETag holding the bytes
}

// LostError is a commit that stored nothing because objects of its batch lost their claims to another run: the batch is
// to be committed again without them (their statistics are counted by the run that won).
type LostError struct{ Lost []Lost }

func (e *LostError) Error() string {
	return fmt.Sprintf("%d objects of the batch were committed by another run first", len(e.Lost))
}
