package lanes

import (
	"fmt"
	"time"
)

// Status is where a file is in its download life:
//
//	pending ──start──▶ downloading ──end──▶ downloaded | failed
//	   ▲                                        │
//	   └──── its object changed (registered) ───┘
//
// The rules of its changes are here, so that every store keeps the same (package mongo persists what they decide):
//
//   - A download's start makes a record downloading, and counts one more attempt; its end (Outcome) makes it downloaded
//     or failed (Final). A file that starts and ends between two writes goes straight to its end.
//   - A record already downloaded is not marked downloading: found in place as recorded, however long verifying it
//     takes, its record is left as it is; fetched again, only its end is written (one more attempt).
//   - A record whose object changed since it was registered goes back to pending, attempts 0, its error, checksum and
//     local path cleared, unless a download of it is running (downloading): that one records what it got.
//   - A record left downloading by a download that died is started again like any other.
//
// CanMove is the table of these moves.
type Status string

const (
	Pending     Status = "pending"     // registered, never downloaded (or changed since)
	Downloading Status = "downloading" // claimed by a download that is running
	Downloaded  Status = "downloaded"  // on disk, whole and verified
	Failed      Status = "failed"      // the last attempt failed: see LastError
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case Pending, Downloading, Downloaded, Failed:
		return true
	}
	return false
}

// Final reports whether s is where a download leaves a file: downloaded or failed. An Outcome's status is final.
func (s Status) Final() bool { return s == Downloaded || s == Failed }

// CanMove reports whether a record at status from may be written with status to (from == to included: a start or an end
// written again, a changed object registered again). The moves refused: downloading → pending (a running download
// records what it got) and downloaded → downloading (a file recorded downloaded keeps saying so until its end is
// written). A from that is none of the four (a record put in by hand) moves like pending; a to that is none of them is
// refused.
func CanMove(from, to Status) bool {
	if !to.Valid() {
		return false
	}
	switch from {
	case Downloading:
		return to != Pending
	case Downloaded:
		return to != Downloading
	}
	return true
}

// Outcome is how a claimed download ended.
type Outcome struct {
	Status    Status // Downloaded or Failed
	LocalPath string // Downloaded: where the file is
	ETag      string // Downloaded: of the object on disk
	VersionID string
	Size      int64
	Checksum  string // Downloaded: what the file was verified with
	Error     string // Failed: why
}

// Change is what happened to one file since its status was last written: its download started (Started: status
// downloading, attempts one more than Record's), ended (Outcome set), or both. Writing a change twice has the effect of
// writing it once: it sets values, computed from Record as read.
type Change struct {
	Record  Record // as read by the download that holds its hour's claim
	Started bool
	Outcome *Outcome
}

// Status is the status c writes: its outcome's, or downloading for a start alone.
func (c Change) Status() Status {
	if c.Outcome == nil {
		return Downloading
	}
	return c.Outcome.Status
}

// Check returns why c may not be written, or nil: a change is a start, an end or both, an end is final, and the move
// from the record's status is one CanMove allows.
func (c Change) Check() error {
	switch {
	case !c.Started && c.Outcome == nil:
		return fmt.Errorf("status change of %s: neither a start nor an end", c.Record.Key)
	case c.Outcome != nil && !c.Outcome.Status.Final():
		return fmt.Errorf("status change of %s: the end %q is not final", c.Record.Key, c.Outcome.Status)
	case !CanMove(c.Record.Status, c.Status()):
		return fmt.Errorf("status change of %s: %q may not become %q", c.Record.Key, c.Record.Status, c.Status())
	}
	return nil
}

// Apply returns the record c makes of c.Record at now: its status; one more attempt for a start; for a download, where
// the file is, its size, checksum and object (ETag and version when known), and no error; for a failure, its error (the
// rest kept). A store persists these fields.
func (c Change) Apply(now time.Time) Record {
	r := c.Record
	r.Status, r.UpdatedAt = c.Status(), now
	if c.Started {
		r.Attempts++
	}
	switch o := c.Outcome; {
	case o == nil:
	case o.Status == Downloaded:
		r.LocalPath, r.Size, r.Checksum, r.LastError = o.LocalPath, o.Size, o.Checksum, ""
		if o.ETag != "" {
			r.ETag = o.ETag
		}
		if o.VersionID != "" {
			r.VersionID = o.VersionID
		}
	default:
		r.LastError = o.Error
	}
	return r
}

// Recorded reports whether r already records outcome o: a downloaded file at the same place, verified the same way, of
// the same object. Such an end is not written (the file was found in place as its record says).
func Recorded(r Record, o Outcome) bool {
	return r.Status == Downloaded && o.Status == Downloaded && r.LastError == "" &&
		r.LocalPath == o.LocalPath && r.Checksum == o.Checksum && r.Size == o.Size &&
		(o.ETag == "" || o.ETag == r.ETag) && (o.VersionID == "" || o.VersionID == r.VersionID)
}
