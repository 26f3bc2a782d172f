package readsb

import (
	"errors"
	"fmt"
	"time"
)

// Limits bound what one file may cost. Each is required: the service's come from the INGEST_MAX_* settings (package
// config has their defaults, sized for a full readsb-hist snapshot of ~5 MB, ~10,000 aircraft, nested 4 deep, with
// strings of at most a dozen bytes).
type Limits struct {
	MaxBytes      int64         // decompressed bytes per file (INGEST_MAX_FILE_BYTES)
	MaxString     int           // bytes of a kept string: hex, r, t, emergency (INGEST_MAX_STRING_BYTES)
	MaxAircraft   int           // distinct addresses per file (INGEST_MAX_AIRCRAFT_PER_FILE)
	MaxDepth      int           // nesting depth of arrays and objects (INGEST_MAX_DEPTH)
	MaxDecodeTime time.Duration // time to decode one file, not counting waits for its reader (INGEST_MAX_DECODE_SECONDS)
}

// Check returns an error unless every limit is set (positive).
func (l Limits) Check() error {
	if l.MaxBytes <= 0 || l.MaxString <= 0 || l.MaxAircraft <= 0 || l.MaxDepth <= 0 || l.MaxDecodeTime <= 0 {
		return fmt.Errorf("readsb: limits %+v: each must be positive", l)
	}
	return nil
}

// capError says a file hit one of the Limits; setting names it.
type capError struct {
	setting string
	what    string
}

func (e capError) Error() string { return fmt.Sprintf("over the cap %s: %s", e.setting, e.what) }

var errDecodeTime = capError{setting: "INGEST_MAX_DECODE_SECONDS", what: "decoding took too long"}

// OverCap reports whether err is a file hitting one of the Limits.
func OverCap(err error) bool { return errors.As(err, new(capError)) }
