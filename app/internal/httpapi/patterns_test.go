package httpapi

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/lanes"
)

// Struct tags cannot name a constant, so the API's patterns are written out; they must be the one definition the code
// behind them checks: lanes.LaneIDPattern (or it, optional) and flight.ICAOPattern.
func TestPatternsAreTheDomainPackages(t *testing.T) {
	optional := "^(" + strings.TrimSuffix(strings.TrimPrefix(lanes.LaneIDPattern, "^"), "$") + ")?$"
	for _, c := range []struct {
		v     any
		field string
		want  string
	}{
		{downloadRequest{}, "LaneID", lanes.LaneIDPattern},
		{registerRecord{}, "LaneID", lanes.LaneIDPattern},
		{listFilesInput{}, "LaneID", optional},
		{statsInput{}, "ICAO", flight.ICAOPattern},
	} {
		f, ok := reflect.TypeOf(c.v).FieldByName(c.field)
		if !ok {
			t.Errorf("%T has no %s", c.v, c.field)
			continue
		}
		if got := f.Tag.Get("pattern"); got != c.want {
			t.Errorf("%T.%s pattern %q, want %q", c.v, c.field, got, c.want)
		}
	}
}
