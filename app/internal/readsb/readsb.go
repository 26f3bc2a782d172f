// Package readsb decodes ADS-B flight data files into flight observations:
// readsb-hist snapshots ({"now": …, "aircraft": [{"hex": …}, …]}) and the
// seed's list format ([{"icao", "altitude", "speed"}, …]), plain or gzip
// (detected by magic bytes, never by name).
//
// Decoding streams: the aircraft array is read one record at a time, so memory
// depends on the number of distinct aircraft, not on the size of the file.
//
// It uses github.com/goccy/go-json: on these records (~35 keys, 6 used) it
// decodes 3–5× faster than encoding/json while keeping its API (see
// ANCHORS.md in the design notes and BenchmarkDecode).
package readsb

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/aircraftdata/platform/app/internal/flight"
)

// File is what one decoded file contributes.
type File struct {
	// Now is the snapshot time ("now"); zero for formats without one.
	Now          time.Time
	Format       string // "readsb-hist" or "list"
	Gzip         bool
	Observations int64
	// Aircraft holds the file's observations per address, not yet stamped with
	// a time (see flight.Aggregate.Stamp).
	Aircraft flight.Aggregate
}

// record is the union of the readsb-hist aircraft object and the seed's list
// element; the decoder skips every other key.
type record struct {
	Hex       string   `json:"hex"`
	ICAO      string   `json:"icao"`
	R         string   `json:"r"`
	T         string   `json:"t"`
	AltBaro   altitude `json:"alt_baro"`
	Altitude  altitude `json:"altitude"`
	GS        altitude `json:"gs"`
	Speed     altitude `json:"speed"`
	Emergency string   `json:"emergency"`
}

// altitude accepts a number, null, or a string such as "ground" (which is an
// observation but not an altitude). It allocates nothing.
type altitude flight.Number

func (a *altitude) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] == '"' || string(b) == "null" {
		*a = altitude{}
		return nil
	}
	v, err := parseFloat(b)
	if err != nil {
		return err
	}
	*a = altitude{Value: v, Valid: true}
	return nil
}

// wholeLimit is the size up to which a file is read into memory and decoded
// in one call, which is about twice as fast as streaming (BenchmarkDecode).
// Larger files stream, so memory per decoder never exceeds this much.
const wholeLimit = 32 << 20

var (
	buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	records = sync.Pool{New: func() any { return new([]record) }}
)

// Decode reads one file, plain or gzip.
func Decode(r io.Reader) (*File, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	gz := false
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		gz = true
		r = zr
	} else {
		r = br
	}

	buf := buffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= wholeLimit+bytes.MinRead {
			buf.Reset()
			buffers.Put(buf)
		}
	}()
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(r, wholeLimit+1))
	if err != nil {
		return nil, readErr(err)
	}
	var f *File
	if n <= wholeLimit {
		f, err = decodeWhole(buf.Bytes())
	} else {
		f, err = decodeStream(io.MultiReader(bytes.NewReader(buf.Bytes()), r))
	}
	if err != nil {
		return nil, err
	}
	f.Gzip = gz
	if !f.Now.IsZero() {
		f.Aircraft.Stamp(f.Now)
	}
	return f, nil
}

func decodeWhole(data []byte) (*File, error) {
	f := &File{Aircraft: make(flight.Aggregate)}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("empty file")
	}
	switch data[0] {
	case '{':
		recs := records.Get().(*[]record)
		defer putRecords(recs)
		var s struct {
			Now      *float64  `json:"now"`
			Aircraft *[]record `json:"aircraft"`
		}
		s.Aircraft = recs
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, syntaxErr(err)
		}
		if len(*recs) == 0 && !hasAircraftArray(data) {
			return nil, errNoAircraft
		}
		if s.Now == nil {
			return nil, errNoNow
		}
		if err := f.setNow(*s.Now); err != nil {
			return nil, err
		}
		f.Format = "readsb-hist"
		f.observe(*s.Aircraft)
	case '[':
		recs := records.Get().(*[]record)
		defer putRecords(recs)
		if err := json.Unmarshal(data, recs); err != nil {
			return nil, syntaxErr(err)
		}
		f.Format = "list"
		f.observe(*recs)
	default:
		return nil, errNotFlightData
	}
	return f, nil
}

// hasAircraftArray tells an empty "aircraft" array from a missing one (the
// pooled slice hides the difference).
func hasAircraftArray(data []byte) bool {
	var probe struct {
		Aircraft json.RawMessage `json:"aircraft"`
	}
	return json.Unmarshal(data, &probe) == nil && len(probe.Aircraft) > 0 && probe.Aircraft[0] == '['
}

// putRecords returns a decoded slice to the pool, cleared so that it keeps
// no strings alive, unless it grew unusually large.
func putRecords(recs *[]record) {
	if cap(*recs) > 1<<16 {
		return
	}
	clear(*recs)
	*recs = (*recs)[:0]
	records.Put(recs)
}

func (f *File) observe(recs []record) {
	for i := range recs {
		if o, ok := recs[i].observation(); ok {
			f.Aircraft.Observe(o, 0)
			f.Observations++
		}
	}
}

var (
	errNotFlightData = errors.New("not a readsb-hist snapshot or a list of aircraft: top-level value is neither object nor array")
	errNoAircraft    = errors.New(`no "aircraft" array: not a readsb-hist snapshot`)
	errNoNow         = errors.New(`no "now": a readsb-hist snapshot needs its time`)
)

func (f *File) setNow(now float64) error {
	if now <= 0 || math.IsInf(now, 0) || math.IsNaN(now) || now > 1e11 {
		return fmt.Errorf(`"now" is not a plausible epoch time: %v`, now)
	}
	sec, frac := math.Modf(now)
	f.Now = time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC()
	return nil
}

// decodeStream reads the aircraft array one record at a time.
func decodeStream(r io.Reader) (*File, error) {
	f := &File{Aircraft: make(flight.Aggregate)}
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxErr(err)
	}
	switch tok {
	case json.Delim('{'):
		f.Format = "readsb-hist"
		err = decodeSnapshot(dec, f)
	case json.Delim('['):
		f.Format = "list"
		err = decodeRecords(dec, f)
	default:
		return nil, errNotFlightData
	}
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the top-level value")
	}
	return f, nil
}

func decodeSnapshot(dec *json.Decoder, f *File) error {
	sawAircraft := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxErr(err)
		}
		key, _ := tok.(string)
		switch key {
		case "now":
			var now float64
			if err := dec.Decode(&now); err != nil {
				return fmt.Errorf(`"now": %w`, syntaxErr(err))
			}
			if err := f.setNow(now); err != nil {
				return err
			}
		case "aircraft":
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf(`"aircraft": %w`, syntaxErr(err))
			}
			if tok != json.Delim('[') {
				return errors.New(`"aircraft" is not an array`)
			}
			if err := decodeRecords(dec, f); err != nil {
				return fmt.Errorf(`"aircraft": %w`, err)
			}
			sawAircraft = true
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return syntaxErr(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return syntaxErr(err)
	}
	if !sawAircraft {
		return errNoAircraft
	}
	if f.Now.IsZero() {
		return errNoNow
	}
	return nil
}

// decodeRecords reads array elements after the opening '[' up to and
// including the closing ']'.
func decodeRecords(dec *json.Decoder, f *File) error {
	for i := 0; dec.More(); i++ {
		var rec record
		if err := dec.Decode(&rec); err != nil {
			return fmt.Errorf("record %d: %w", i, syntaxErr(err))
		}
		o, ok := rec.observation()
		if !ok {
			continue // no usable address: not an aircraft we can key statistics on
		}
		f.Aircraft.Observe(o, 0)
		f.Observations++
	}
	if _, err := dec.Token(); err != nil { // closing ']'
		return syntaxErr(err)
	}
	return nil
}

func (r *record) observation() (flight.Observation, bool) {
	hex := r.Hex
	if hex == "" {
		hex = r.ICAO
	}
	icao, err := flight.NormalizeICAO(hex)
	if err != nil {
		return flight.Observation{}, false
	}
	o := flight.Observation{
		ICAO:         icao,
		Registration: strings.TrimSpace(r.R),
		Type:         strings.TrimSpace(r.T),
		Altitude:     flight.Number(r.AltBaro),
		GroundSpeed:  flight.Number(r.GS),
		Emergency:    r.Emergency,
	}
	if !o.Altitude.Valid {
		o.Altitude = flight.Number(r.Altitude)
	}
	if !o.GroundSpeed.Valid {
		o.GroundSpeed = flight.Number(r.Speed)
	}
	return o, true
}

func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) {
		return fmt.Errorf("gzip stream is truncated or corrupt: %w", err)
	}
	return err
}

// syntaxErr makes decoder errors readable: a file that ends early says so.
func syntaxErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "unexpected end of JSON input") {
		return errors.New("unexpected end of data: the file is truncated")
	}
	return err
}

func parseFloat(b []byte) (float64, error) {
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %.20q", b)
	}
	return v, nil
}
