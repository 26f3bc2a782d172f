package readsb

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aircraftdata/platform/app/internal/flight"
)

// The rules a value must meet to count as an observation. Field meanings come from readsb's README-json.md
// (github.com/wiedehopf/readsb), ranges from what an ADS-B / Mode S message can encode (RTCA DO-260B §2.2.3.2.3.4 and
// §2.2.3.2.6, ICAO Annex 10 Vol IV §3.1.2.6.5.4):
//
//   - hex: "the 24-bit ICAO identifier of the aircraft, as 6 hex digits. The identifier may start with '~'" (a non-ICAO
//     address). Anything else: the record has no address we can key statistics on and is dropped.
//   - alt_baro (list format: altitude): "the aircraft barometric altitude in feet as a whole number or 'ground'". The
//     altitude field of a message encodes -1,000 to 50,175 ft in 25 ft steps, or -1,200 to 126,700 ft in 100 ft
//     (Gillham) steps, so MinAltitude..MaxAltitude.
//   - gs (list format: speed): "ground speed in knots". An airborne velocity message carries east-west and north-south
//     components of at most 1,021 kt (subsonic) or 4,084 kt (supersonic, 4 kt steps); the largest ground speed they
//     give is √2 × 4,084 ≈ 5,776 kt, so 0..MaxGroundSpeed.
//   - emergency: "ADS-B emergency/priority status, a superset of the 7x00 squawks (none, general, lifeguard, minfuel,
//     nordo, unlawful, downed, reserved)".
//   - r (registration) and t (type): text, at most INGEST_MAX_STRING_BYTES bytes; valid UTF-8 without control
//     characters.
//
// A value that breaks its rule is not an observation of that metric (the record still counts, with its other values)
// and is counted in File.Invalid under its reason. With these ranges every stored sum stays finite: 126,700 ft × 2^63
// observations is ~1e24, far below float64's ~1.8e308.
const (
	MinAltitude    = -1200.0
	MaxAltitude    = 126700.0
	MaxGroundSpeed = 5776.0
)

// Reasons a value is not counted, as they appear in File.Invalid.
const (
	reasonNotObject        = "aircraft entry is not an object"
	reasonNoHex            = "hex missing"
	reasonBadHex           = "hex is not 6 hex digits (optionally ~)"
	reasonAltitudeRange    = "alt_baro out of range -1200..126700 ft"
	reasonAltitudeType     = `alt_baro is neither a number nor "ground"`
	reasonSpeedRange       = "gs out of range 0..5776 kt"
	reasonSpeedType        = "gs is not a number"
	reasonEmergency        = "emergency is not a readsb value"
	reasonRegistrationText = "r is not text"
	reasonTypeText         = "t is not text"
)

// Emergencies are readsb's documented emergency values.
var Emergencies = []string{"none", "general", "lifeguard", "minfuel", "nordo", "unlawful", "downed", "reserved"}

// metric is a kept value that should be a number.
type metric struct {
	value float64
	set   bool // present and not null
	str   bool // a string: "ground" when ground
	other bool // an array, object or boolean

	ground bool
}

// validate turns a record into an observation, counting what it drops.
func (d *decoder) validate(rec *raw) (flight.Observation, bool) {
	hex := rec.hex
	if hex == "" {
		hex = rec.icao
	}
	if hex == "" {
		d.f.Invalid[reasonNoHex]++
		return flight.Observation{}, false
	}
	icao, err := flight.NormalizeICAO(hex)
	if err != nil {
		d.f.Invalid[reasonBadHex]++
		return flight.Observation{}, false
	}
	o := flight.Observation{ICAO: icao}
	o.Registration = d.text(rec.r, reasonRegistrationText)
	o.Type = d.text(rec.t, reasonTypeText)

	alt := rec.alt
	if !alt.set {
		alt = rec.altitude
	}
	switch {
	case !alt.set, alt.ground:
	case alt.str || alt.other:
		d.f.Invalid[reasonAltitudeType]++
	case alt.value < MinAltitude || alt.value > MaxAltitude || alt.value != alt.value:
		d.f.Invalid[reasonAltitudeRange]++
	default:
		o.Altitude = flight.Number{Value: alt.value, Valid: true}
	}

	gs := rec.gs
	if !gs.set {
		gs = rec.speed
	}
	switch {
	case !gs.set:
	case gs.str || gs.other:
		d.f.Invalid[reasonSpeedType]++
	case gs.value < 0 || gs.value > MaxGroundSpeed || gs.value != gs.value:
		d.f.Invalid[reasonSpeedRange]++
	default:
		o.GroundSpeed = flight.Number{Value: gs.value, Valid: true}
	}

	switch e := rec.emergency; e {
	case "", "none":
	case "general", "lifeguard", "minfuel", "nordo", "unlawful", "downed", "reserved":
		o.Emergency = e
	default:
		d.f.Invalid[reasonEmergency]++
	}
	return o, true
}

// text trims s and checks it is printable text; otherwise it counts reason and returns "".
func (d *decoder) text(s, reason string) string {
	if s == "" {
		return ""
	}
	ok := s != notAString && utf8.ValidString(s)
	for _, r := range s {
		if !ok {
			break
		}
		ok = !unicode.IsControl(r)
	}
	if !ok {
		d.f.Invalid[reason]++
		return ""
	}
	return strings.TrimSpace(s)
}
