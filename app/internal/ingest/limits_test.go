package ingest

import (
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/readsb"
)

// defaultLimits are the caps the service runs with by default (package config owns them).
func defaultLimits() readsb.Limits {
	def := config.Defaults()
	return readsb.Limits{
		MaxBytes: def.IngestMaxFileBytes, MaxString: def.IngestMaxStringBytes, MaxAircraft: def.IngestMaxAircraftPerFile,
		MaxDepth: def.IngestMaxDepth, MaxDecodeTime: def.IngestMaxDecodeTime,
	}
}

// DefaultLimits is defaultLimits for the package's external tests.
var DefaultLimits = defaultLimits
