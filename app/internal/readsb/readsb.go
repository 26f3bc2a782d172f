// Package readsb decodes ADS-B flight data files into flight observations: readsb-hist snapshots ({"now": …,
// "aircraft": [{"hex": …}, …]}) and the seed's list format ([{"icao", "altitude", "speed"}, …]), plain or gzip
// (detected by magic bytes, never by name).
//
// Decoding streams whatever the size of the file: a small tokenizer of our own (scan.go) reads records one at a time
// from a 64 KiB buffer, keeps the six values the statistics use and skips every other value without holding it. Memory
// per file is therefore the buffer plus the file's per-aircraft aggregate, and every way a file could grow either is
// capped by Limits: decompressed bytes, bytes of a kept string, distinct addresses, nesting depth and decode time. A
// file that hits a cap is bad, with a reason naming the cap (capError).
//
// Values are checked against the rules in validate.go; a value outside them is not an observation of its metric and is
// counted in File.Invalid by reason, the rest of the record still counts.
//
// The general-purpose decoders we measured (encoding/json, goccy/go-json, jsontext) either buffer a whole value to skip
// it or a whole file to decode it fast, and none caps the length of a single string; the README's ingestion benchmark
// compares this decoder with the goccy/go-json one it replaced.
package readsb

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aircraftdata/platform/app/internal/flight"
)

const (
	// maxNumber is the longest number literal kept (a float64 needs at most 24 significant digits); longer ones make
	// the file bad.
	maxNumber = 64
	// maxKey is the longest key that can be one we use.
	maxKey = 16
)

// SourceError is a failure to read the file from where it is stored (the network, S3), not a fault of its content.
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return "read: " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// File is what one decoded file contributes.
type File struct {
	// Now is the snapshot time ("now"); zero for formats without one.
	Now          time.Time
	Format       string // "readsb-hist" or "list"
	Gzip         bool
	Observations int64
	// Aircraft holds the file's observations per address, stamped with Now (not stamped for formats without a time: see
	// flight.Aggregate.Stamp).
	Aircraft flight.Aggregate
	// Invalid counts values that broke a rule of validate.go, by reason.
	Invalid map[string]int64
}

// aircraftHint is how many aircraft the last file decoded held. The next file's maps start at that size (within its
// aircraft cap): a feed's snapshots hold about as many aircraft each, and a map grown one doubling at a time allocates
// about twice its final size and copies its entries at each step. Sized, decoding the benchmark's 1,054 MB of snapshots
// allocates 624 MB instead of 863 (BenchmarkDecodeAggregate).
var aircraftHint atomic.Int64

var buffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// Decode reads one file, plain or gzip, within lim.
func Decode(r io.Reader, lim Limits) (*File, error) {
	if err := lim.Check(); err != nil {
		return nil, err
	}
	source := &sourceReader{r: r}
	br := bufio.NewReaderSize(source, 32<<10)
	hint := min(int(aircraftHint.Load()), lim.MaxAircraft)
	f := &File{Aircraft: make(flight.Aggregate, hint), Invalid: map[string]int64{}}
	var src io.Reader = br
	if magic, err := br.Peek(2); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	} else if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, gzipErr(err)
		}
		defer zr.Close()
		f.Gzip = true
		src = gzipReader{zr}
	}
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	d := decoder{
		scanner: scanner{
			r:        &capReader{r: src, left: lim.MaxBytes},
			buf:      *buf,
			maxDepth: lim.MaxDepth,
			deadline: time.Now().Add(lim.MaxDecodeTime),
			str:      make([]byte, 0, max(lim.MaxString, maxNumber)),
		},
		lim:   lim,
		f:     f,
		names: make(map[string]string, hint),
	}
	source.deadline = &d.deadline
	if err := d.document(); err != nil {
		return nil, err
	}
	if !f.Now.IsZero() {
		f.Aircraft.Stamp(f.Now)
	}
	aircraftHint.Store(int64(len(f.Aircraft)))
	return f, nil
}

// sourceReader marks the errors of the underlying reader as SourceError, and moves the decode deadline by the time
// spent waiting for it: the cap counts decoding, a slow source is the source's business.
type sourceReader struct {
	r        io.Reader
	deadline *time.Time // nil: none yet
}

func (s *sourceReader) Read(p []byte) (int, error) {
	start := time.Now()
	n, err := s.r.Read(p)
	if s.deadline != nil {
		*s.deadline = s.deadline.Add(time.Since(start))
	}
	if err != nil && err != io.EOF {
		err = &SourceError{err}
	}
	return n, err
}

// gzipReader words the decompressor's errors as faults of the file.
type gzipReader struct{ r *gzip.Reader }

func (g gzipReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		err = gzipErr(err)
	}
	return n, err
}

func gzipErr(err error) error {
	var se *SourceError
	switch {
	case errors.As(err, &se):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("gzip stream is truncated")
	}
	return fmt.Errorf("%w (a corrupt gzip member, or data after the last one)", err)
}

// capReader fails once more than left bytes are read.
type capReader struct {
	r    io.Reader
	left int64
	read int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, capError{setting: "INGEST_MAX_FILE_BYTES", what: fmt.Sprintf("more than %d bytes decompressed", c.read-1)}
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	c.read += int64(n)
	return n, err
}

type decoder struct {
	scanner
	lim      Limits
	f        *File
	nrecords int64
	names    map[string]string // addresses seen, interned
}

var (
	errNotFlightData = errors.New("not a readsb-hist snapshot or a list of aircraft: top-level value is neither object nor array")
	errNoAircraft    = errors.New(`no "aircraft" array: not a readsb-hist snapshot`)
	errNoNow         = errors.New(`no "now": a readsb-hist snapshot needs its time`)
	errEmpty         = errors.New("empty file")
)

func (d *decoder) document() error {
	c, err := d.peek()
	if err == errTruncated && d.offset() == 0 {
		return errEmpty
	}
	if err != nil {
		return err
	}
	d.pos++
	switch c {
	case '{':
		d.f.Format = "readsb-hist"
		err = d.snapshot()
	case '[':
		d.f.Format = "list"
		err = d.records(1)
	default:
		return errNotFlightData
	}
	if err != nil {
		return err
	}
	if d.nrecords > 0 && d.f.Observations == 0 {
		return fmt.Errorf("not flight data: none of its %d aircraft records has a valid hex", d.nrecords)
	}
	if end, err := d.atEnd(); err != nil {
		return err
	} else if !end {
		return fmt.Errorf("unexpected data after the top-level value at byte %d", d.offset())
	}
	return nil
}

func (d *decoder) snapshot() error {
	sawAircraft, sawNow := false, false
	for first := true; ; first = false {
		ok, err := d.more(first, '}')
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		k, err := d.key(maxKey)
		if err != nil {
			return err
		}
		switch string(k) {
		case "now":
			v, kind, err := d.value(maxNumber, 1)
			if err != nil {
				return err
			}
			if kind != kindNumber {
				return errors.New(`"now" is not a number`)
			}
			now, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return fmt.Errorf(`"now" is not a plausible epoch time: %.30q`, v)
			}
			if err := d.f.setNow(now); err != nil {
				return err
			}
			sawNow = true
		case "aircraft":
			if err := d.expect('[', `"aircraft" to be an array`); err != nil {
				return fmt.Errorf(`"aircraft" is not an array: %w`, err)
			}
			if err := d.records(2); err != nil {
				return fmt.Errorf(`"aircraft": %w`, err)
			}
			sawAircraft = true
		default:
			if err := d.skipValue(1); err != nil {
				return err
			}
		}
	}
	if !sawAircraft {
		return errNoAircraft
	}
	if !sawNow {
		return errNoNow
	}
	return nil
}

func (f *File) setNow(now float64) error {
	if now <= 0 || math.IsInf(now, 0) || math.IsNaN(now) || now > 1e11 {
		return fmt.Errorf(`"now" is not a plausible epoch time: %v`, now)
	}
	sec, frac := math.Modf(now)
	f.Now = time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC()
	return nil
}

// records reads array elements after the opening '[' (at depth) up to and including the closing ']'.
func (d *decoder) records(depth int) error {
	for i, first := 0, true; ; i, first = i+1, false {
		ok, err := d.more(first, ']')
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		d.nrecords++
		c, err := d.peek()
		if err != nil {
			return err
		}
		if c != '{' {
			d.f.Invalid[reasonNotObject]++
			if err := d.skipValue(depth); err != nil {
				return err
			}
			continue
		}
		if depth+1 > d.lim.MaxDepth {
			return capError{setting: "INGEST_MAX_DEPTH", what: fmt.Sprintf("values nested deeper than %d levels", d.lim.MaxDepth)}
		}
		d.pos++
		if err := d.record(depth + 1); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
}

type kind int

const (
	kindOther kind = iota // an array, object, true or false: skipped
	kindNull
	kindString
	kindNumber
)

// value reads a scalar value of at most max bytes (longer strings are a capError, longer numbers a syntax error) and
// skips anything else. The bytes are valid until the next read.
func (d *decoder) value(max, depth int) ([]byte, kind, error) {
	c, err := d.peek()
	if err != nil {
		return nil, 0, err
	}
	switch {
	case c == '"':
		d.pos++
		s, tooLong, err := d.readString(max, false)
		if err != nil {
			return nil, 0, err
		}
		if tooLong {
			return nil, 0, capError{setting: "INGEST_MAX_STRING_BYTES", what: fmt.Sprintf("a string of a kept field longer than %d bytes, ending at byte %d", max, d.offset())}
		}
		return s, kindString, nil
	case c == '-' || '0' <= c && c <= '9':
		v, err := d.readNumber(maxNumber)
		return v, kindNumber, err
	case c == 'n':
		return nil, kindNull, d.literal("null")
	}
	return nil, kindOther, d.skipValue(depth)
}

// raw is one record's kept values before validation.
type raw struct {
	hex, icao, r, t, emergency string
	alt, altitude, gs, speed   metric
}

// record reads one aircraft object after its '{'.
func (d *decoder) record(depth int) error {
	var rec raw
	for first := true; ; first = false {
		ok, err := d.more(first, '}')
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		k, err := d.key(maxKey)
		if err != nil {
			return err
		}
		var str *string
		var num *metric
		var field string // k is only valid until the next read
		switch string(k) {
		case "hex":
			str, field = &rec.hex, "hex"
		case "icao":
			str, field = &rec.icao, "icao"
		case "r":
			str, field = &rec.r, "r"
		case "t":
			str, field = &rec.t, "t"
		case "emergency":
			str, field = &rec.emergency, "emergency"
		case "alt_baro":
			num, field = &rec.alt, "alt_baro"
		case "altitude":
			num, field = &rec.altitude, "altitude"
		case "gs":
			num, field = &rec.gs, "gs"
		case "speed":
			num, field = &rec.speed, "speed"
		default:
			if err := d.skipValue(depth); err != nil {
				return err
			}
			continue
		}
		v, kind, err := d.value(d.lim.MaxString, depth)
		if err != nil {
			return fmt.Errorf("%q: %w", field, err)
		}
		if str != nil {
			switch kind {
			case kindString:
				*str = d.intern(v, field == "hex" || field == "icao")
			case kindNull:
				*str = ""
			default:
				*str = notAString
			}
			continue
		}
		*num = metric{}
		switch kind {
		case kindNumber:
			n, err := strconv.ParseFloat(string(v), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return fmt.Errorf("%q: not a number: %.30q", field, v)
			}
			*num = metric{value: n, set: true}
		case kindString:
			*num = metric{ground: string(v) == "ground", str: true, set: true}
		case kindNull:
		default:
			*num = metric{set: true, other: true}
		}
	}
	o, ok := d.validate(&rec)
	if !ok {
		return nil
	}
	d.f.Aircraft.Observe(o, 0)
	d.f.Observations++
	if len(d.f.Aircraft) > d.lim.MaxAircraft {
		return capError{setting: "INGEST_MAX_AIRCRAFT_PER_FILE", what: fmt.Sprintf("more than %d distinct addresses", d.lim.MaxAircraft)}
	}
	return nil
}

// notAString marks a kept field that held a number, array or object.
const notAString = "\x00not a string"

// intern returns common short values without allocating. Addresses are kept in d.names (up to the aircraft cap), so a
// file naming the same aircraft a million times allocates its address once.
func (d *decoder) intern(b []byte, address bool) string {
	switch string(b) {
	case "none":
		return "none"
	case "":
		return ""
	}
	if !address {
		return string(b)
	}
	if s, ok := d.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.names) < d.lim.MaxAircraft {
		d.names[s] = s
	}
	return s
}
