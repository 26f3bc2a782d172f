package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/ledger"
)

// ingestLock is the first key of the API's advisory locks, one per bucket and prefix ("airc" in ASCII); the second is a
// hash of the two.
const ingestLock = 0x61697263

// Lock takes the lock of one bucket and prefix, or fails with ledger.ErrBusy; release it with unlock. Only the API's
// runs take it, so that a second call for the same prefix answers 409: the ingestion itself needs no lock (Commit is
// safe to run many at once). Two prefixes whose hashes collide (about one pair in 4 billion) share a lock. The lock
// holds a connection: a session-level advisory lock is released by the server if the connection dies, so a crashed
// instance never blocks others.
func (db *DB) Lock(ctx context.Context, bucket, prefix string) (unlock func(), err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	name := bucket + "/" + prefix
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, ingestLock, name).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("postgres: lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, ledger.ErrBusy
	}
	return func() { release(conn, name) }, nil
}

func release(conn *pgxpool.Conn, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, ingestLock, name); err != nil {
		// The lock dies with the session: drop the connection rather than return a locked one to the pool.
		conn.Conn().Close(ctx)
	}
	conn.Release()
}

// maxReason bounds a stored reason: reasons are our own messages, but may quote a little of a file.
const maxReason = 1000

// Known returns the outcomes of the objects of bucket (key and etag) that are in the ledger already.
func (db *DB) Known(ctx context.Context, bucket string, objs []ledger.Object) (map[ledger.Object]ledger.Outcome, error) {
	keys := make([]string, len(objs))
	etags := make([]string, len(objs))
	for i, o := range objs {
		keys[i], etags[i] = o.Key, o.ETag
	}
	rows, err := db.pool.Query(ctx, `
		SELECT l.key, l.etag, l.outcome FROM ingested_objects l
		JOIN unnest($2::text[], $3::text[]) AS o(key, etag) ON l.key = o.key AND l.etag = o.etag
		WHERE l.bucket = $1`, bucket, keys, etags)
	if err != nil {
		return nil, fmt.Errorf("postgres: ledger: %w", err)
	}
	defer rows.Close()
	known := make(map[ledger.Object]ledger.Outcome)
	for rows.Next() {
		var k, e, outcome string
		if err := rows.Scan(&k, &e, &outcome); err != nil {
			return nil, err
		}
		known[ledger.Object{Bucket: bucket, Key: k, ETag: e}] = ledger.Outcome(outcome)
	}
	return known, rows.Err()
}

// FailedFiles lists the quarantined files of bucket by key, after the key after, at most limit of them.
func (db *DB) FailedFiles(ctx context.Context, bucket, after string, limit int) ([]ledger.FailedFile, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT bucket, key, etag, version_id, size, reason, ingested_at FROM ingested_objects
		WHERE outcome = 'failed' AND bucket = $1 AND key > $2
		ORDER BY key, etag LIMIT $3`, bucket, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: ledger: %w", err)
	}
	files, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ledger.FailedFile, error) {
		var f ledger.FailedFile
		err := row.Scan(&f.Bucket, &f.Key, &f.ETag, &f.VersionID, &f.Size, &f.Reason, &f.FailedAt)
		f.FailedAt = f.FailedAt.UTC()
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: ledger: %w", err)
	}
	return files, nil
}

// isRefused reports whether err is the database refusing the data it was given (a data exception, an integrity
// violation or a program limit, such as a value too large for its field), as opposed to the database being unavailable
// or the statement being wrong.
func isRefused(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) < 2 {
		return false
	}
	switch pg.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// refusalReason says that the database refused a file's data, naming the SQLSTATE code only: its message (types,
// values, schema) stays in the log, through RefusedError.Err, since the reason is served to clients.
func refusalReason(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return fmt.Sprintf("the database refused its data (SQLSTATE %s)", pg.Code)
	}
	return "the database refused its data"
}

// SnapshotKey returns the key under which the snapshot taken at t was ingested, if it was.
func (db *DB) SnapshotKey(ctx context.Context, t time.Time) (string, bool, error) {
	var bucket, key string
	err := db.pool.QueryRow(ctx, `SELECT bucket, key FROM snapshots WHERE snapshot_at = $1`, t).Scan(&bucket, &key)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("postgres: snapshots: %w", err)
	}
	return bucket + "/" + key, true, nil
}

// SameContent returns the ETag of the version of obj's key whose bytes, with this SHA-256, were ingested, and reports
// whether one was.
func (db *DB) SameContent(ctx context.Context, obj ledger.Object, sha256 []byte) (string, bool, error) {
	var etag string
	err := db.pool.QueryRow(ctx, `
		SELECT etag FROM ingested_objects
		WHERE bucket = $1 AND key = $2 AND content_sha256 = $3 AND outcome = 'ingested' LIMIT 1`,
		obj.Bucket, obj.Key, sha256).Scan(&etag)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("postgres: ledger: %w", err)
	}
	return etag, true, nil
}

// commitAttempts bounds the attempts of a commit that PostgreSQL aborted for a serialization failure or a deadlock
// (40001, 40P01): a hiccup of the dependency, not the data's fault.
const commitAttempts = 3

// Commit writes, in one transaction, the ledger entries of a batch of objects and the statistics they produced. Either
// all of it is stored or none: a batch interrupted before commit is simply ingested again. Commits are safe to run many
// at once, in any order (claims.go). The database refusing the data fails it with a *ledger.RefusedError; objects
// claimed by another run fail it with a *ledger.LostError, storing nothing.
func (db *DB) Commit(ctx context.Context, objects []ledger.Processed, agg flight.Aggregate) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = db.commit(ctx, objects, agg)
		if !retryable(err) || attempt == commitAttempts {
			break
		}
		select {
		case <-time.After(time.Duration(attempt*(50+rand.IntN(50))) * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
	if isRefused(err) {
		return &ledger.RefusedError{Reason: refusalReason(err), Err: err}
	}
	return err
}

// retryable reports whether err is a transaction PostgreSQL aborted to let another one through (a serialization failure
// or a deadlock).
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40001" || pg.Code == "40P01")
}

func (db *DB) commit(ctx context.Context, objects []ledger.Processed, agg flight.Aggregate) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit

	lost, err := claim(ctx, tx, objects)
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return &ledger.LostError{Lost: lost}
	}
	if err := upsertStats(ctx, tx, agg); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// cleanReason makes a reason storable: valid UTF-8, no NUL, bounded.
func cleanReason(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) > maxReason {
		s = strings.ToValidUTF8(s[:maxReason], "") + "…"
	}
	return s
}
