package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/flight"
)

// statColumn is one column of aircraft_stats (besides its key, icao): the field of flight.Partial it stores and how it
// merges. The upsert and the read follow this list, so a new statistic is a line here and a migration adding its
// column.
type statColumn struct {
	name string
	// merge is the column's new value when a batch's row (excluded) meets the stored one (s): the SQL form of
	// flight.Partial.Merge's rule for it.
	merge string
	value func(p *flight.Partial) any // what p stores in it; nil is NULL
	dest  func(p *flight.Partial) any // a scan destination that sets it in p
}

var statColumns = []statColumn{
	{"registration", latest("registration", "registration_at"),
		func(p *flight.Partial) any { return nullUnless(p.Registration != "", p.Registration) },
		func(p *flight.Partial) any { return into[string]{&p.Registration} }},
	{"registration_at", latest("registration_at", "registration_at"),
		func(p *flight.Partial) any { return nullUnless(p.Registration != "", toTime(p.RegistrationAt)) },
		func(p *flight.Partial) any { return unixMS{&p.RegistrationAt} }},
	{"type", latest("type", "type_at"),
		func(p *flight.Partial) any { return nullUnless(p.Type != "", p.Type) },
		func(p *flight.Partial) any { return into[string]{&p.Type} }},
	{"type_at", latest("type_at", "type_at"),
		func(p *flight.Partial) any { return nullUnless(p.Type != "", toTime(p.TypeAt)) },
		func(p *flight.Partial) any { return unixMS{&p.TypeAt} }},
	{"observations", sum("observations"),
		func(p *flight.Partial) any { return p.Observations },
		func(p *flight.Partial) any { return &p.Observations }},
	{"first_seen", "LEAST(s.first_seen, excluded.first_seen)",
		func(p *flight.Partial) any { return toTime(p.FirstSeen) },
		func(p *flight.Partial) any { return unixMS{&p.FirstSeen} }},
	{"last_seen", "GREATEST(s.last_seen, excluded.last_seen)",
		func(p *flight.Partial) any { return toTime(p.LastSeen) },
		func(p *flight.Partial) any { return unixMS{&p.LastSeen} }},
	{"altitude_count", sum("altitude_count"),
		func(p *flight.Partial) any { return p.AltitudeCount },
		func(p *flight.Partial) any { return &p.AltitudeCount }},
	{"altitude_sum", sum("altitude_sum"),
		func(p *flight.Partial) any { return p.AltitudeSum },
		func(p *flight.Partial) any { return &p.AltitudeSum }},
	{"altitude_max", "GREATEST(s.altitude_max, excluded.altitude_max)",
		func(p *flight.Partial) any { return nullUnless(p.AltitudeCount > 0, p.AltitudeMax) },
		func(p *flight.Partial) any { return into[float64]{&p.AltitudeMax} }},
	{"speed_count", sum("speed_count"),
		func(p *flight.Partial) any { return p.SpeedCount },
		func(p *flight.Partial) any { return &p.SpeedCount }},
	{"speed_sum", sum("speed_sum"),
		func(p *flight.Partial) any { return p.SpeedSum },
		func(p *flight.Partial) any { return &p.SpeedSum }},
	{"speed_max", "GREATEST(s.speed_max, excluded.speed_max)",
		func(p *flight.Partial) any { return nullUnless(p.SpeedCount > 0, p.SpeedMax) },
		func(p *flight.Partial) any { return into[float64]{&p.SpeedMax} }},
	{"emergencies", "ARRAY(SELECT DISTINCT e FROM unnest(s.emergencies || excluded.emergencies) AS e ORDER BY e)",
		func(p *flight.Partial) any { return emptyIfNil(p.Emergencies) },
		func(p *flight.Partial) any { return &p.Emergencies }},
}

// sum is the merge of a count or a sum.
func sum(c string) string { return fmt.Sprintf("s.%s + excluded.%s", c, c) }

// latest is the merge of a value that the last one seen (at column at) replaces.
func latest(c, at string) string {
	return fmt.Sprintf("CASE WHEN newer(excluded.%s, s.%s) THEN excluded.%s ELSE s.%s END", at, at, c, c)
}

// The statements the column list makes.
var (
	statNames = func() []string {
		names := []string{"icao"}
		for _, c := range statColumns {
			names = append(names, c.name)
		}
		return names
	}()
	selectStats = `SELECT ` + strings.Join(statNames, ", ") + ` FROM aircraft_stats`
	mergeStats  = func() string {
		set := make([]string, len(statColumns))
		for i, c := range statColumns {
			set[i] = c.name + " = " + c.merge
		}
		cols := strings.Join(statNames, ", ")
		return `INSERT INTO aircraft_stats AS s (` + cols + `) SELECT ` + cols + ` FROM stats_batch ORDER BY icao
			ON CONFLICT (icao) DO UPDATE SET ` + strings.Join(set, ", ")
	}()
)

// upsertStats copies the batch into a temporary table and merges it into aircraft_stats in one statement: one round
// trip for any number of aircraft. Rows are merged in the order of their address, so that two batches with aircraft in
// common lock them in the same order and never deadlock.
func upsertStats(ctx context.Context, tx pgx.Tx, agg flight.Aggregate) error {
	if len(agg) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE stats_batch (LIKE aircraft_stats) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("postgres: stage: %w", err)
	}
	rows := make([][]any, 0, len(agg))
	for icao, p := range agg {
		row := make([]any, 1, 1+len(statColumns))
		row[0] = icao
		for _, c := range statColumns {
			row = append(row, c.value(&p))
		}
		rows = append(rows, row)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stats_batch"}, statNames, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("postgres: stage: %w", err)
	}
	if _, err := tx.Exec(ctx, mergeStats); err != nil {
		return fmt.Errorf("postgres: merge statistics: %w", err)
	}
	return nil
}

// scanStats scans a row of selectStats into the statistics it holds.
func scanStats(row pgx.Row) (flight.Stats, error) {
	var (
		icao string
		p    flight.Partial
	)
	dest := []any{&icao}
	for _, c := range statColumns {
		dest = append(dest, c.dest(&p))
	}
	if err := row.Scan(dest...); err != nil {
		return flight.Stats{}, err
	}
	return p.Stats(icao), nil
}

// into scans a nullable column into *v, leaving it as it is for NULL.
type into[T any] struct{ v *T }

func (d into[T]) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		return nil
	case T:
		*d.v = v
		return nil
	}
	return fmt.Errorf("postgres: cannot scan %T into %T", src, *d.v)
}

// unixMS scans a timestamptz column into Unix milliseconds, leaving them as they are for NULL.
type unixMS struct{ v *int64 }

func (d unixMS) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		return nil
	case time.Time:
		*d.v = v.UnixMilli()
		return nil
	}
	return fmt.Errorf("postgres: cannot scan %T into a time", src)
}

func nullUnless[T any](ok bool, v T) any {
	if !ok {
		return nil
	}
	return v
}

func toTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
