// Package flight is the domain of flight statistics: what one observation of an aircraft is, how observations add up to
// per-aircraft statistics, and how partial statistics from different files merge.
//
// Everything here is pure computation; decoding lives in readsb, storage in postgres, orchestration in ingest.
package flight

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// Observation is one aircraft record of one snapshot.
type Observation struct {
	ICAO         string // lower-case hex address, optionally prefixed "~" (non-ICAO)
	Registration string
	Type         string
	Altitude     Number // barometric altitude in feet; not Valid for "ground" or absent
	GroundSpeed  Number // knots
	Emergency    string // "" when absent
}

// Number is a float that may be absent. It is a value type so that decoding a record allocates nothing for it.
type Number struct {
	Value float64
	Valid bool
}

// Stats are the statistics of one aircraft as the API shows them (its schema is derived from this type).
type Stats struct {
	ICAO            string     `json:"icao"`
	Registration    *string    `json:"registration"`
	Type            *string    `json:"type"`
	Observations    int64      `json:"observations"`
	FirstSeen       *time.Time `json:"first_seen"`
	LastSeen        *time.Time `json:"last_seen"`
	MaxAltitudeBaro *float64   `json:"max_altitude_baro"`
	AvgAltitudeBaro *float64   `json:"avg_altitude_baro"`
	MaxGroundSpeed  *float64   `json:"max_ground_speed"`
	AvgGroundSpeed  *float64   `json:"avg_ground_speed"`
	HadEmergency    bool       `json:"had_emergency"`
	Emergencies     []string   `json:"emergencies"`
}

// ErrNotFound is returned for an aircraft with no statistics.
var ErrNotFound = errors.New("not found")

// Aircraft is one entry of the aircraft list.
type Aircraft struct {
	ICAO         string  `json:"icao"`
	Registration *string `json:"registration"`
	Type         *string `json:"type"`
}

// ICAOPattern is the accepted form of an address in requests (case-insensitive).
const ICAOPattern = `^~?[0-9A-Fa-f]{6}$`

// ErrInvalidICAO reports an address that is not 6 hex digits (optionally "~"-prefixed).
var ErrInvalidICAO = errors.New("icao must be 6 hexadecimal digits, optionally prefixed with ~")

// NormalizeICAO lower-cases an address and checks its form.
func NormalizeICAO(s string) (string, error) {
	s = strings.TrimSpace(s)
	hex := strings.TrimPrefix(s, "~")
	if len(hex) != 6 {
		return "", ErrInvalidICAO
	}
	lower := true
	for i := 0; i < len(hex); i++ {
		switch c := hex[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			lower = false
		default:
			return "", ErrInvalidICAO
		}
	}
	if !lower {
		s = strings.ToLower(s)
	}
	return s, nil
}

// isEmergency reports whether an emergency value means an emergency: anything but absent or "none".
func isEmergency(v string) bool { return v != "" && v != "none" }

// Partial is the contribution of some observations to one aircraft's statistics. Partials merge associatively, so files
// can be aggregated in any order and any grouping and give the same result.
//
// Times are Unix milliseconds rather than time.Time: a Partial then holds no pointers but its strings, which keeps the
// collector's work small when hundreds of thousands of them pass through an ingestion.
type Partial struct {
	Observations   int64
	FirstSeen      int64 // Unix ms
	LastSeen       int64 // Unix ms
	Registration   string
	RegistrationAt int64 // Unix ms when Registration was last seen
	Type           string
	TypeAt         int64
	AltitudeCount  int64
	AltitudeSum    float64
	AltitudeMax    float64
	SpeedCount     int64
	SpeedSum       float64
	SpeedMax       float64
	Emergencies    []string // sorted, distinct
}

// Observe adds one observation made at Unix millisecond at.
func (p *Partial) Observe(o Observation, at int64) {
	if p.Observations == 0 || at < p.FirstSeen {
		p.FirstSeen = at
	}
	if p.Observations == 0 || at > p.LastSeen {
		p.LastSeen = at
	}
	p.Observations++
	if o.Registration != "" && at >= p.RegistrationAt {
		p.Registration, p.RegistrationAt = o.Registration, at
	}
	if o.Type != "" && at >= p.TypeAt {
		p.Type, p.TypeAt = o.Type, at
	}
	if o.Altitude.Valid {
		if p.AltitudeCount == 0 || o.Altitude.Value > p.AltitudeMax {
			p.AltitudeMax = o.Altitude.Value
		}
		p.AltitudeCount++
		p.AltitudeSum += o.Altitude.Value
	}
	if o.GroundSpeed.Valid {
		if p.SpeedCount == 0 || o.GroundSpeed.Value > p.SpeedMax {
			p.SpeedMax = o.GroundSpeed.Value
		}
		p.SpeedCount++
		p.SpeedSum += o.GroundSpeed.Value
	}
	if isEmergency(o.Emergency) {
		p.addEmergency(o.Emergency)
	}
}

// Merge adds q into p.
func (p *Partial) Merge(q *Partial) {
	if q.Observations == 0 {
		return
	}
	if p.Observations == 0 || q.FirstSeen < p.FirstSeen {
		p.FirstSeen = q.FirstSeen
	}
	if p.Observations == 0 || q.LastSeen > p.LastSeen {
		p.LastSeen = q.LastSeen
	}
	p.Observations += q.Observations
	if q.Registration != "" && q.RegistrationAt >= p.RegistrationAt {
		p.Registration, p.RegistrationAt = q.Registration, q.RegistrationAt
	}
	if q.Type != "" && q.TypeAt >= p.TypeAt {
		p.Type, p.TypeAt = q.Type, q.TypeAt
	}
	if q.AltitudeCount > 0 {
		if p.AltitudeCount == 0 || q.AltitudeMax > p.AltitudeMax {
			p.AltitudeMax = q.AltitudeMax
		}
		p.AltitudeCount += q.AltitudeCount
		p.AltitudeSum += q.AltitudeSum
	}
	if q.SpeedCount > 0 {
		if p.SpeedCount == 0 || q.SpeedMax > p.SpeedMax {
			p.SpeedMax = q.SpeedMax
		}
		p.SpeedCount += q.SpeedCount
		p.SpeedSum += q.SpeedSum
	}
	for _, e := range q.Emergencies {
		p.addEmergency(e)
	}
}

// Stats are the statistics of p, the partial of aircraft icao, as the API shows them: averages from sums and counts,
// null for what was never seen.
func (p *Partial) Stats(icao string) Stats {
	s := Stats{
		ICAO:            icao,
		Registration:    nonEmpty(p.Registration),
		Type:            nonEmpty(p.Type),
		Observations:    p.Observations,
		FirstSeen:       utcMilli(p.FirstSeen),
		LastSeen:        utcMilli(p.LastSeen),
		MaxAltitudeBaro: ifSeen(p.AltitudeCount, p.AltitudeMax),
		AvgAltitudeBaro: ifSeen(p.AltitudeCount, p.AltitudeSum/float64(p.AltitudeCount)),
		MaxGroundSpeed:  ifSeen(p.SpeedCount, p.SpeedMax),
		AvgGroundSpeed:  ifSeen(p.SpeedCount, p.SpeedSum/float64(p.SpeedCount)),
		HadEmergency:    len(p.Emergencies) > 0,
		Emergencies:     slices.Clone(p.Emergencies),
	}
	if s.Emergencies == nil {
		s.Emergencies = []string{}
	}
	return s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func utcMilli(ms int64) *time.Time {
	t := time.UnixMilli(ms).UTC()
	return &t
}

// ifSeen is v when n values were seen, else nil.
func ifSeen(n int64, v float64) *float64 {
	if n == 0 {
		return nil
	}
	return &v
}

func (p *Partial) addEmergency(e string) {
	if i, found := slices.BinarySearch(p.Emergencies, e); !found {
		p.Emergencies = slices.Insert(p.Emergencies, i, e)
	}
}

// Aggregate holds partial statistics per aircraft address. Values, not pointers: one allocation per map growth rather
// than one per aircraft.
type Aggregate map[string]Partial

// Observe adds one observation made at Unix millisecond at.
func (a Aggregate) Observe(o Observation, at int64) {
	p := a[o.ICAO]
	p.Observe(o, at)
	a[o.ICAO] = p
}

// Merge adds every partial of b into a.
func (a Aggregate) Merge(b Aggregate) {
	for icao, q := range b {
		if p, ok := a[icao]; ok {
			p.Merge(&q)
			a[icao] = p
		} else {
			a[icao] = q
		}
	}
}

// Observations is the number of observations in the aggregate.
func (a Aggregate) Observations() int64 {
	var n int64
	for _, p := range a {
		n += p.Observations
	}
	return n
}

// Stamp sets the time of every observation in the aggregate to at. Decoders aggregate a snapshot before they know its
// time (all of its observations share one), then stamp it.
func (a Aggregate) Stamp(at time.Time) {
	ms := at.UnixMilli()
	for icao, p := range a {
		p.FirstSeen, p.LastSeen = ms, ms
		if p.Registration != "" {
			p.RegistrationAt = ms
		}
		if p.Type != "" {
			p.TypeAt = ms
		}
		a[icao] = p
	}
}
