// Package postgres stores flight statistics and the ingestion ledger in
// PostgreSQL (pgx), and applies the embedded schema migrations at start with
// pressly/goose, whose Postgres session lock lets several instances start at
// once without racing on the schema.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/aircraftdata/platform/app/internal/flight"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the service's PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
}

// Open connects to url and brings the schema up to date.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) migrate(ctx context.Context) error {
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, mustSub(migrations, "migrations"), goose.WithSessionLocker(locker),
		// Branches add migrations in parallel: one merged later with a lower
		// number still runs.
		goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

func mustSub(fsys embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Close closes the pool.
func (db *DB) Close() { db.pool.Close() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// Stats returns the statistics of one aircraft, or flight.ErrNotFound.
func (db *DB) Stats(ctx context.Context, icao string) (*flight.Stats, error) {
	s, err := scanStats(db.pool.QueryRow(ctx, selectStats+` WHERE icao = $1`, icao))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, flight.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: stats of %s: %w", icao, err)
	}
	return &s, nil
}

// Aircraft lists up to limit aircraft ordered by address, starting after the
// address after ("" for the first page).
func (db *DB) Aircraft(ctx context.Context, after string, limit int) ([]flight.Aircraft, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT icao, registration, type FROM aircraft_stats
		WHERE icao > $1 ORDER BY icao LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list aircraft: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (flight.Aircraft, error) {
		var a flight.Aircraft
		err := row.Scan(&a.ICAO, &a.Registration, &a.Type)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list aircraft: %w", err)
	}
	return list, nil
}
