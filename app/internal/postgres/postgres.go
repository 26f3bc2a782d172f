// Package postgres stores flight statistics and the ingestion ledger in PostgreSQL (pgx), and applies the embedded
// schema migrations at start with pressly/goose, whose Postgres session lock lets several instances start at once
// without racing on the schema. The jobs and the backfills are kept in the same database by stores of their own:
// jobstore and backfillstore.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/aircraftdata/platform/app/internal/flight"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the service's PostgreSQL database. Its queries run on the work's pool (ingestion, the ledger, jobs); Reads is
// the same database on a pool of its own for the API's reads, and Ping has a connection of its own, so that neither
// reads nor readiness checks ever take a connection the work needs.
type DB struct {
	pool  *pgxpool.Pool // the work's; the read pool in a Reads view
	reads *pgxpool.Pool
	ping  *pgxpool.Pool
	view  bool // a Reads view: Close leaves the pools alone
}

// ReadPool bounds the pool of the API's reads.
type ReadPool struct {
	MaxConns int           // DB_READ_MAX_CONNS
	Timeout  time.Duration // READ_TIMEOUT_SECONDS: the statement_timeout of each of its statements
}

// Open connects to url and brings the schema up to date. It opens three pools: the work's (pgx's default size, or url's
// pool_max_conns), the reads' (rp; read-only transactions, statement_timeout rp.Timeout), and one connection for Ping.
func Open(ctx context.Context, url string, rp ReadPool) (*DB, error) {
	db, err := connect(ctx, url, rp, nil)
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Password gives the password of each new connection (an IAM database auth token, valid 15 minutes).
type Password func(ctx context.Context) (string, error)

// OpenMigrated is Open for the ingestion worker, of which hundreds may start at once and none owns the schema: it never
// migrates, and takes no lock. It checks that every migration this binary embeds is in goose's version table, and fails
// otherwise ("schema at version N, this worker needs M: deploy aircraftd first"). A schema with migrations this binary
// does not know is accepted, as Open accepts it (goose runs none then): migrations only add, and a deploy migrates
// (aircraftd) before the workers of the new binary replace the old ones, which keep working in between. The password of
// every connection of every pool is given by password when not nil, instead of url's.
func OpenMigrated(ctx context.Context, url string, rp ReadPool, password Password) (*DB, error) {
	db, err := connect(ctx, url, rp, password)
	if err != nil {
		return nil, err
	}
	if err := db.checkSchema(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func connect(ctx context.Context, url string, rp ReadPool, password Password) (*DB, error) {
	if rp.MaxConns < 1 || rp.Timeout <= 0 {
		return nil, errors.New("postgres: the read pool needs at least one connection and a timeout")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if password != nil {
		cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
			pw, err := password(ctx)
			cc.Password = pw
			return err
		}
	}
	readCfg := cfg.Copy()
	readCfg.MaxConns, readCfg.MinConns = int32(min(rp.MaxConns, math.MaxInt32)), 0
	readCfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(rp.Timeout.Milliseconds(), 10)
	readCfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pingCfg := readCfg.Copy()
	pingCfg.MaxConns = 1

	db := &DB{}
	for _, p := range []struct {
		pool **pgxpool.Pool
		cfg  *pgxpool.Config
	}{{&db.pool, cfg}, {&db.reads, readCfg}, {&db.ping, pingCfg}} {
		if *p.pool, err = pgxpool.NewWithConfig(ctx, p.cfg); err != nil {
			db.Close()
			return nil, fmt.Errorf("postgres: %w", err)
		}
	}
	return db, nil
}

// Reads is db on the read pool: every query of the returned DB runs there, read-only and under the pool's
// statement_timeout, and waits only for the read pool's connections. Its Close does nothing.
func (db *DB) Reads() *DB { return &DB{pool: db.reads, reads: db.reads, ping: db.ping, view: true} }

// Pool returns the pool that db's queries run on (the read pool in a Reads view), for the stores of their own tables
// beside this package (postgres/jobstore, postgres/backfillstore).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Pools returns the pools by name, for their stats: "work" (ingestion, jobs, claims) and "read" (the API's reads).
func (db *DB) Pools() map[string]*pgxpool.Pool {
	return map[string]*pgxpool.Pool{"work": db.pool, "read": db.reads}
}

func (db *DB) migrate(ctx context.Context) error {
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, mustSub(migrations, "migrations"), goose.WithSessionLocker(locker),
		// Branches add migrations in parallel: one merged later with a lower number still runs.
		goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// checkSchema reports, as an error, the migrations this binary embeds that goose's version table does not list
// (OpenMigrated), with one read and no lock.
func (db *DB) checkSchema(ctx context.Context) error {
	var applied []int64
	rows, err := db.pool.Query(ctx, `SELECT version_id FROM goose_db_version WHERE is_applied`)
	if err == nil {
		applied, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	var pg *pgconn.PgError
	if err != nil && !(errors.As(err, &pg) && pg.Code == "42P01") { // undefined_table: no migration ever ran
		return fmt.Errorf("postgres: read the schema's version: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	var have, need int64
	for _, v := range applied {
		have = max(have, v)
	}
	var missing []int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", n, err)
		}
		need = max(need, v)
		if !slices.Contains(applied, v) {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("postgres: schema at version %d, this worker needs %d (migrations %v not applied): deploy aircraftd first", have, need, missing)
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

// Close closes the pools.
func (db *DB) Close() {
	if db.view {
		return
	}
	for _, p := range []*pgxpool.Pool{db.pool, db.reads, db.ping} {
		if p != nil {
			p.Close()
		}
	}
}

// Ping checks that the database answers, on a connection of its own.
func (db *DB) Ping(ctx context.Context) error { return db.ping.Ping(ctx) }

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

// Aircraft lists up to limit aircraft ordered by address, starting after the address after ("" for the first page).
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
