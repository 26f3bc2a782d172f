// Package lanes is the domain of lane file downloads: the record of one file of a lane in a bucket, its download status
// and the rules of its changes (status.go), the validation of requests, the bucket key layout, and the safe local path
// of a downloaded file.
//
// It knows nothing of MongoDB or S3: the store (package mongo) keeps records, the downloader (package download) moves
// bytes.
package lanes

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Record is one file of a lane: an object of the source bucket and what happened to it.
type Record struct {
	// ID is the store's document id (the key for records the service registered; anything for records put in by hand).
	ID any `json:"-" bson:"_id,omitempty"`

	Key       string    `json:"s3_key" bson:"s3_key" doc:"object key in the source bucket"`
	LaneID    string    `json:"lane_id" bson:"lane_id"`
	Timestamp time.Time `json:"timestamp" bson:"timestamp" doc:"when the file's data was recorded (UTC); selects the hour"`
	Size      int64     `json:"size" bson:"size" doc:"bytes; 0 when registered without a size"`
	ETag      string    `json:"etag,omitempty" bson:"etag,omitempty" doc:"S3 ETag without quotes; a download fails if the object no longer has it"`
	VersionID string    `json:"version_id,omitempty" bson:"version_id,omitempty" doc:"S3 version id of what was (or will be) downloaded"`

	Status    Status     `json:"status" bson:"status" enum:"pending,downloading,downloaded,failed"`
	LocalPath string     `json:"local_path,omitempty" bson:"local_path,omitempty"`
	Attempts  int        `json:"attempts" bson:"attempts" doc:"download attempts so far"`
	LastError string     `json:"last_error,omitempty" bson:"last_error,omitempty"`
	Checksum  string     `json:"checksum,omitempty" bson:"checksum,omitempty" doc:"what the downloaded file was verified against, e.g. crc32c:yZRlqg=="`
	UpdatedAt time.Time  `json:"updated_at" bson:"updated_at"`
	Modified  *time.Time `json:"last_modified,omitempty" bson:"last_modified,omitempty" doc:"the object's Last-Modified when registered from the bucket"`
}

// LaneIDPattern is the syntax of a lane id (also a folder name on disk).
const LaneIDPattern = `^[A-Za-z0-9_-]{1,64}$`

var laneIDRE = regexp.MustCompile(LaneIDPattern)

// ValidLaneID reports whether id may be used as a lane id.
func ValidLaneID(id string) bool { return laneIDRE.MatchString(id) }

// ParseDate reads a request's date: RFC 3339 ("2024-02-14T00:00:00Z", the seed's form) or a plain "2024-02-14". Only
// the calendar date as written counts; a time of day, if any, is ignored. It returns midnight UTC of that date.
func ParseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date: want YYYY-MM-DD or RFC 3339 (2024-02-14T00:00:00Z)", s)
	}
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
}

// Hour is one UTC hour of one lane: what a download request selects.
type Hour struct {
	LaneID string
	Start  time.Time // UTC, on the hour
}

// NewHour validates a request's fields and returns the hour they select. Errors are *FieldError naming the offending
// field.
func NewHour(laneID, date string, hour int) (Hour, error) {
	var errs []error
	if !ValidLaneID(laneID) {
		errs = append(errs, &FieldError{Field: "lane_id", Value: laneID, Msg: "want 1 to 64 letters, digits, _ or -"})
	}
	if hour < 0 || hour > 23 {
		errs = append(errs, &FieldError{Field: "hour", Value: hour, Msg: "want 0 to 23"})
	}
	day, err := ParseDate(date)
	if err != nil {
		errs = append(errs, &FieldError{Field: "date", Value: date, Msg: err.Error()})
	}
	if len(errs) > 0 {
		return Hour{}, errors.Join(errs...)
	}
	return Hour{LaneID: laneID, Start: day.Add(time.Duration(hour) * time.Hour)}, nil
}

// End is the first instant after the hour.
func (h Hour) End() time.Time { return h.Start.Add(time.Hour) }

// Contains reports whether t falls in the hour.
func (h Hour) Contains(t time.Time) bool {
	return !t.Before(h.Start) && t.Before(h.End())
}

// Dir is the hour's folder below the downloads root: {lane_id}/{yyyy}/{mm}/{dd}/{hh}.
func (h Hour) Dir() string {
	t := h.Start.UTC()
	return filepath.Join(h.LaneID, fmt.Sprintf("%04d", t.Year()), fmt.Sprintf("%02d", int(t.Month())),
		fmt.Sprintf("%02d", t.Day()), fmt.Sprintf("%02d", t.Hour()))
}

// hourOf returns the hour a record belongs to.
func hourOf(r Record) Hour {
	return Hour{LaneID: r.LaneID, Start: r.Timestamp.UTC().Truncate(time.Hour)}
}

// FieldError is a request value that is not acceptable.
type FieldError struct {
	Field string
	Value any
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ErrUnsafeKey marks a key whose file could not be written safely below its lane's folder.
var ErrUnsafeKey = errors.New("unsafe key")

// maxFileNameLen is the longest file name most file systems accept.
const maxFileNameLen = 255

// FileName returns the name the object of key gets on disk: its last path segment. It refuses keys that are absolute,
// have "." or ".." segments, end in "/", or hold a backslash or a control character: such a key names no plain file of
// the lane's folder, and writing it could land outside.
func FileName(key string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrUnsafeKey, key, why)
	}
	switch {
	case key == "":
		return bad("empty")
	case strings.HasPrefix(key, "/"):
		return bad("absolute")
	case strings.HasSuffix(key, "/"):
		return bad("empty file name")
	case strings.ContainsRune(key, '\\'):
		return bad("backslash")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return bad("control character")
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return bad(`"." or ".." segment`)
		}
	}
	name := key[strings.LastIndexByte(key, '/')+1:]
	if len(name) > maxFileNameLen {
		return bad("file name longer than 255 bytes")
	}
	return name, nil
}

// RelPath is where the file of r goes below the downloads root: {lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file name}. The result
// is always a local path (filepath.IsLocal) made of the validated lane id, the date and the key's file name, or an
// error wrapping ErrUnsafeKey.
func RelPath(r Record) (string, error) {
	if !ValidLaneID(r.LaneID) {
		return "", fmt.Errorf("%w %q: lane_id %q is not a valid lane id", ErrUnsafeKey, r.Key, r.LaneID)
	}
	name, err := FileName(r.Key)
	if err != nil {
		return "", err
	}
	p := filepath.Join(hourOf(r).Dir(), name)
	if !filepath.IsLocal(p) || filepath.Base(p) != name {
		return "", fmt.Errorf("%w %q: file name would leave the lane folder", ErrUnsafeKey, r.Key)
	}
	return p, nil
}

// ParseKey reads a key laid out as …/{lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file} (any prefix before the lane id) into a
// pending record. ok is false, with the reason, when the key does not follow the layout.
func ParseKey(key string) (r Record, reason string, ok bool) {
	segs := strings.Split(key, "/")
	if len(segs) < 6 {
		return r, "not laid out as …/{lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file}", false
	}
	segs = segs[len(segs)-6:]
	lane, ys, ms, ds, hs, file := segs[0], segs[1], segs[2], segs[3], segs[4], segs[5]
	if file == "" {
		return r, "no file name", false
	}
	if !ValidLaneID(lane) {
		return r, fmt.Sprintf("lane id %q is not valid", lane), false
	}
	num := func(s string, digits, lo, hi int) (int, bool) {
		if len(s) != digits {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= lo && n <= hi
	}
	y, okY := num(ys, 4, 1, 9999)
	m, okM := num(ms, 2, 1, 12)
	d, okD := num(ds, 2, 1, 31)
	h, okH := num(hs, 2, 0, 23)
	if !okY || !okM || !okD || !okH {
		return r, fmt.Sprintf("%s/%s/%s/%s is not a yyyy/mm/dd/hh hour", ys, ms, ds, hs), false
	}
	t := time.Date(y, time.Month(m), d, h, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return r, fmt.Sprintf("%s-%s-%s is not a calendar date", ys, ms, ds), false
	}
	return Record{Key: key, LaneID: lane, Timestamp: t, Status: Pending}, "", true
}

// ErrNotFound means there is no record of a key.
var ErrNotFound = errors.New("no such file record")

// Query selects records. Zero fields select everything.
type Query struct {
	LaneID   string
	From, To time.Time // timestamp in [From, To)
	Status   Status
	After    string // keys after this one (paging)
	Limit    int    // 0 = no limit
}

// RegisterResult counts what a registration did.
type RegisterResult struct {
	Added     int `json:"added" doc:"new records"`
	Updated   int `json:"updated" doc:"records whose object changed: back to pending"`
	Unchanged int `json:"unchanged" doc:"records already registered as they are"`
}

// Add adds o's counts to r's.
func (r *RegisterResult) Add(o RegisterResult) {
	r.Added += o.Added
	r.Updated += o.Updated
	r.Unchanged += o.Unchanged
}

// ErrClaimLost means a claim is no longer its owner's: it expired and another owner took it over.
var ErrClaimLost = errors.New("claim lost")

// FileError is a file's failure told twice: Reason, in our own words, for its record's last_error and the client (what
// happened to the file and what to do; S3's error code at most), and Err, the cause in the words of the SDK, the driver
// or the system (hosts, request ids, absolute paths), for the log only.
type FileError struct {
	Reason string
	Err    error
}

func (e *FileError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *FileError) Unwrap() error { return e.Err }

// Reason is what a client is told of a file's failure err: the Reason of the first FileError in its chain, else err's
// own text (errors made of our own words only: claim lost, unsafe key, shutdown).
func Reason(err error) string {
	var fe *FileError
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return err.Error()
}
