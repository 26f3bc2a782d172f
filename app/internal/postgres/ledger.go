package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aircraftdata/platform/app/internal/flight"
)

// ErrBusy is returned by Lock when another ingestion holds the lock.
var ErrBusy = errors.New("another ingestion is running")

// ingestLock is the advisory lock key that serialises ingestions across all
// instances sharing the database ("airc" in ASCII).
const ingestLock = 0x61697263

// Lock takes the ingestion lock for as long as the returned connection is
// held; release it with Unlock. A session-level advisory lock is released by
// the server if the connection dies, so a crashed instance never blocks others.
func (db *DB) Lock(ctx context.Context) (*Lock, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, ingestLock).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("postgres: lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, ErrBusy
	}
	return &Lock{conn: conn}, nil
}

// Lock is a held ingestion lock.
type Lock struct{ conn *pgxpool.Conn }

// Unlock releases the lock.
func (l *Lock) Unlock() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, ingestLock); err != nil {
		// The lock dies with the session: drop the connection rather than
		// return a locked one to the pool.
		l.conn.Conn().Close(ctx)
	}
	l.conn.Release()
}

// Object identifies one stored object version.
type Object struct {
	Bucket, Key, ETag, VersionID string
	Size                         int64
}

// Outcome is what happened to an object in the ledger.
type Outcome string

const (
	Ingested          Outcome = "ingested"
	DuplicateSnapshot Outcome = "duplicate-snapshot"
	// DuplicateContent is a version of a key whose bytes were ingested
	// from another version of it (a list-format file re-uploaded).
	DuplicateContent Outcome = "duplicate-content"
	// Failed is a quarantined file: refused with a reason, skipped until its
	// ETag changes.
	Failed Outcome = "failed"
)

// Processed is one object's ledger entry.
type Processed struct {
	Object
	Outcome      Outcome
	SnapshotAt   time.Time // zero when the format has no snapshot time
	Observations int64
	Reason       string // why a Failed file was refused
	SHA256       []byte // of the object's bytes; nil when not read
}

// maxReason bounds a stored reason: reasons are our own messages, but may
// quote a little of a file.
const maxReason = 1000

// Known returns the outcomes of the objects of bucket (key and etag) that are
// in the ledger already.
func (db *DB) Known(ctx context.Context, bucket string, objs []Object) (map[Object]Outcome, error) {
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
	known := make(map[Object]Outcome)
	for rows.Next() {
		var k, e, outcome string
		if err := rows.Scan(&k, &e, &outcome); err != nil {
			return nil, err
		}
		known[Object{Bucket: bucket, Key: k, ETag: e}] = Outcome(outcome)
	}
	return known, rows.Err()
}

// FailedFile is a quarantined file.
type FailedFile struct {
	Bucket    string    `json:"bucket"`
	Key       string    `json:"key"`
	ETag      string    `json:"etag"`
	VersionID string    `json:"version_id"`
	Size      int64     `json:"size"`
	Reason    string    `json:"reason"`
	FailedAt  time.Time `json:"failed_at"`
}

// FailedFiles lists the quarantined files of bucket by key, after the key
// after, at most limit of them.
func (db *DB) FailedFiles(ctx context.Context, bucket, after string, limit int) ([]FailedFile, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT bucket, key, etag, version_id, size, reason, ingested_at FROM ingested_objects
		WHERE outcome = 'failed' AND bucket = $1 AND key > $2
		ORDER BY key, etag LIMIT $3`, bucket, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: ledger: %w", err)
	}
	files, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (FailedFile, error) {
		var f FailedFile
		err := row.Scan(&f.Bucket, &f.Key, &f.ETag, &f.VersionID, &f.Size, &f.Reason, &f.FailedAt)
		f.FailedAt = f.FailedAt.UTC()
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: ledger: %w", err)
	}
	return files, nil
}

// IsRefused reports whether err is the database refusing the data it was
// given (a data exception, an integrity violation or a program limit, such
// as a value too large for its field), as opposed to the database being
// unavailable or the statement being wrong.
func IsRefused(err error) bool {
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

// RefusalReason is the database's own words for a refusal, without the
// driver's wrapping.
func RefusalReason(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return fmt.Sprintf("the database refused it: %s (SQLSTATE %s)", pg.Message, pg.Code)
	}
	return "the database refused it"
}

// SnapshotKey returns the key under which the snapshot taken at t was
// ingested, if it was.
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

// SameContent returns the ETag of the version of obj's key whose bytes,
// with this SHA-256, were ingested, and reports whether one was.
func (db *DB) SameContent(ctx context.Context, obj Object, sha256 []byte) (string, bool, error) {
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

// Commit writes, in one transaction, the ledger entries of a batch of
// objects and the statistics they produced. Either all of it is stored or
// none: a batch interrupted before commit is simply ingested again.
func (db *DB) Commit(ctx context.Context, objects []Processed, agg flight.Aggregate) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit

	ledger := make([][]any, len(objects))
	var snaps [][]any
	keys := make([]string, len(objects))
	for i, o := range objects {
		keys[i] = o.Key
		var at *time.Time
		if !o.SnapshotAt.IsZero() {
			at = &o.SnapshotAt
			if o.Outcome == Ingested {
				snaps = append(snaps, []any{o.SnapshotAt, o.Bucket, o.Key})
			}
		}
		ledger[i] = []any{o.Bucket, o.Key, o.ETag, o.VersionID, o.Size, at, string(o.Outcome), o.Observations, cleanReason(o.Reason), o.SHA256}
	}
	// A file ingested or refused again replaces its earlier refusal (of any
	// ETag): the failed list shows each key's latest state.
	if len(objects) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM ingested_objects WHERE outcome = 'failed' AND bucket = $1 AND key = ANY($2)`,
			objects[0].Bucket, keys); err != nil {
			return fmt.Errorf("postgres: ledger: %w", err)
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ingested_objects"},
		[]string{"bucket", "key", "etag", "version_id", "size", "snapshot_at", "outcome", "observations", "reason", "content_sha256"},
		pgx.CopyFromRows(ledger)); err != nil {
		return fmt.Errorf("postgres: ledger: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"snapshots"}, []string{"snapshot_at", "bucket", "key"},
		pgx.CopyFromRows(snaps)); err != nil {
		return fmt.Errorf("postgres: snapshots: %w", err)
	}
	if err := upsertStats(ctx, tx, agg); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

var statsColumns = []string{
	"icao", "registration", "registration_at", "type", "type_at", "observations", "first_seen", "last_seen",
	"altitude_count", "altitude_sum", "altitude_max", "speed_count", "speed_sum", "speed_max", "emergencies",
}

// upsertStats copies the batch into a temporary table and merges it into
// aircraft_stats in one statement: one round trip for any number of aircraft.
func upsertStats(ctx context.Context, tx pgx.Tx, agg flight.Aggregate) error {
	if len(agg) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE stats_batch (LIKE aircraft_stats) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("postgres: stage: %w", err)
	}
	rows := make([][]any, 0, len(agg))
	for icao, p := range agg {
		rows = append(rows, []any{
			icao, nullString(p.Registration), nullTime(p.Registration, p.RegistrationAt),
			nullString(p.Type), nullTime(p.Type, p.TypeAt), p.Observations, toTime(p.FirstSeen), toTime(p.LastSeen),
			p.AltitudeCount, p.AltitudeSum, nullMax(p.AltitudeCount, p.AltitudeMax),
			p.SpeedCount, p.SpeedSum, nullMax(p.SpeedCount, p.SpeedMax), emptyIfNil(p.Emergencies),
		})
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stats_batch"}, statsColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("postgres: stage: %w", err)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO aircraft_stats AS s SELECT * FROM stats_batch
		ON CONFLICT (icao) DO UPDATE SET
			registration    = CASE WHEN newer(excluded.registration_at, s.registration_at) THEN excluded.registration ELSE s.registration END,
			registration_at = CASE WHEN newer(excluded.registration_at, s.registration_at) THEN excluded.registration_at ELSE s.registration_at END,
			type            = CASE WHEN newer(excluded.type_at, s.type_at) THEN excluded.type ELSE s.type END,
			type_at         = CASE WHEN newer(excluded.type_at, s.type_at) THEN excluded.type_at ELSE s.type_at END,
			observations    = s.observations + excluded.observations,
			first_seen      = LEAST(s.first_seen, excluded.first_seen),
			last_seen       = GREATEST(s.last_seen, excluded.last_seen),
			altitude_count  = s.altitude_count + excluded.altitude_count,
			altitude_sum    = s.altitude_sum + excluded.altitude_sum,
			altitude_max    = GREATEST(s.altitude_max, excluded.altitude_max),
			speed_count     = s.speed_count + excluded.speed_count,
			speed_sum       = s.speed_sum + excluded.speed_sum,
			speed_max       = GREATEST(s.speed_max, excluded.speed_max),
			emergencies     = ARRAY(SELECT DISTINCT e FROM unnest(s.emergencies || excluded.emergencies) AS e ORDER BY e)`)
	if err != nil {
		return fmt.Errorf("postgres: merge statistics: %w", err)
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

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func nullTime(s string, ms int64) *time.Time {
	if s == "" {
		return nil
	}
	t := toTime(ms)
	return &t
}

func nullMax(n int64, v float64) *float64 {
	if n == 0 {
		return nil
	}
	return &v
}

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
