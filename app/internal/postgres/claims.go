package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/ledger"
)

// A batch's claims, in the batch's transaction. Many runs may commit at once, overlapping in any way: each thing that
// must count once has a unique row, and a batch inserts its rows with ON CONFLICT, so that of two transactions claiming
// the same row the second waits for the first and wins only if the first rolls back. The claims, in this order, each in
// sorted order (two transactions then wait for each other in one direction only, never in a cycle; aircraft_stats comes
// last, by address):
//
//  1. ingested_objects, by (bucket, key, etag): the object version. A failed row (a quarantined file) is replaced by
//     any outcome; any other row stands: the object was processed by another run.
//  2. snapshots, by snapshot time, for ingested readsb-hist files.
//  3. contents, by (bucket, key, SHA-256), for ingested list files.
//
// Rows a batch did not win are returned as ledger.Lost, and the transaction stores nothing.

// claim inserts the batch's claims and returns what it lost. When it lost nothing, it also removes the earlier refusals
// (failed rows of other ETags) of the batch's keys: the failed list shows each key's latest state.
func claim(ctx context.Context, tx pgx.Tx, objects []ledger.Processed) ([]ledger.Lost, error) {
	if len(objects) == 0 {
		return nil, nil
	}
	won, err := claimObjects(ctx, tx, objects)
	if err != nil {
		return nil, err
	}
	var lost []ledger.Lost
	for i := range objects {
		if !won[i] {
			lost = append(lost, ledger.Lost{Index: i})
		}
	}
	snaps, err := claimSnapshots(ctx, tx, objects, won)
	if err != nil {
		return nil, err
	}
	contents, err := claimContents(ctx, tx, objects, won)
	if err != nil {
		return nil, err
	}
	lost = append(append(lost, snaps...), contents...)
	if len(lost) > 0 {
		return lost, nil
	}
	buckets, keys, etags := make([]string, len(objects)), make([]string, len(objects)), make([]string, len(objects))
	for i, o := range objects {
		buckets[i], keys[i], etags[i] = o.Bucket, o.Key, o.ETag
	}
	if _, err := tx.Exec(ctx, `
		DELETE FROM ingested_objects l USING unnest($1::text[], $2::text[], $3::text[]) AS w(bucket, key, etag)
		WHERE l.outcome = 'failed' AND l.bucket = w.bucket AND l.key = w.key AND l.etag <> w.etag`,
		buckets, keys, etags); err != nil {
		return nil, fmt.Errorf("postgres: ledger: %w", err)
	}
	return nil, nil
}

// claimObjects inserts the ledger rows of objects (distinct versions) and reports, by index, those it won.
func claimObjects(ctx context.Context, tx pgx.Tx, objects []ledger.Processed) ([]bool, error) {
	n := len(objects)
	var (
		buckets, keys, etags, versions, outcomes, reasons = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n)
		sizes, observations = make([]int64, n), make([]int64, n)
		ats                 = make([]*time.Time, n)
		sums                = make([][]byte, n)
	)
	index := make(map[[3]string]int, n)
	for i, o := range objects {
		buckets[i], keys[i], etags[i], versions[i] = o.Bucket, o.Key, o.ETag, o.VersionID
		outcomes[i], reasons[i], sizes[i], observations[i], sums[i] = string(o.Outcome), cleanReason(o.Reason), o.Size,
			o.Observations, o.SHA256
		if !o.SnapshotAt.IsZero() {
			ats[i] = &objects[i].SnapshotAt
		}
		index[[3]string{o.Bucket, o.Key, o.ETag}] = i
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO ingested_objects AS l
			(bucket, key, etag, version_id, size, snapshot_at, outcome, observations, reason, content_sha256)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::text[],
			$8::bigint[], $9::text[], $10::bytea[]) ORDER BY 1, 2, 3
		ON CONFLICT (bucket, key, etag) DO UPDATE SET version_id = excluded.version_id, size = excluded.size,
			snapshot_at = excluded.snapshot_at, outcome = excluded.outcome, observations = excluded.observations,
			reason = excluded.reason, content_sha256 = excluded.content_sha256, ingested_at = now()
		WHERE l.outcome = 'failed'
		RETURNING bucket, key, etag`,
		buckets, keys, etags, versions, sizes, ats, outcomes, observations, reasons, sums)
	if err != nil {
		return nil, fmt.Errorf("postgres: ledger: %w", err)
	}
	won := make([]bool, n)
	var id [3]string
	_, err = pgx.ForEachRow(rows, []any{&id[0], &id[1], &id[2]}, func() error {
		won[index[id]] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: ledger: %w", err)
	}
	return won, nil
}

// claimSnapshots claims the snapshot times of the ingested files among the won objects, and returns those taken by
// another file.
func claimSnapshots(ctx context.Context, tx pgx.Tx, objects []ledger.Processed, won []bool) ([]ledger.Lost, error) {
	var ats []time.Time
	var buckets, keys []string
	index := map[int64]int{}
	for i, o := range objects {
		if won[i] && o.Outcome == ledger.Ingested && !o.SnapshotAt.IsZero() {
			ats, buckets, keys = append(ats, o.SnapshotAt), append(buckets, o.Bucket), append(keys, o.Key)
			index[o.SnapshotAt.UnixMicro()] = i
		}
	}
	if len(ats) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO snapshots (snapshot_at, bucket, key)
		SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[]) ORDER BY 1
		ON CONFLICT (snapshot_at) DO NOTHING RETURNING snapshot_at`, ats, buckets, keys)
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshots: %w", err)
	}
	taken := make(map[int64]bool, len(index))
	for at := range index {
		taken[at] = true
	}
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&at}, func() error { delete(taken, at.UnixMicro()); return nil }); err != nil {
		return nil, fmt.Errorf("postgres: snapshots: %w", err)
	}
	if len(taken) == 0 {
		return nil, nil
	}
	rows, err = tx.Query(ctx, `SELECT snapshot_at, bucket || '/' || key FROM snapshots WHERE snapshot_at = ANY($1)`, ats)
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshots: %w", err)
	}
	var lost []ledger.Lost
	var source string
	_, err = pgx.ForEachRow(rows, []any{&at, &source}, func() error {
		if taken[at.UnixMicro()] {
			lost = append(lost, ledger.Lost{Index: index[at.UnixMicro()], Outcome: ledger.DuplicateSnapshot, Source: source})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshots: %w", err)
	}
	return lost, nil
}

// claimContents claims the bytes of the ingested list files (no snapshot time) among the won objects under their keys,
// and returns those whose bytes another version of the key holds.
func claimContents(ctx context.Context, tx pgx.Tx, objects []ledger.Processed, won []bool) ([]ledger.Lost, error) {
	var lost []ledger.Lost
	for i, o := range objects {
		if !won[i] || o.Outcome != ledger.Ingested || !o.SnapshotAt.IsZero() || o.SHA256 == nil {
			continue
		}
		// A statement or two each: list files are few (the seed's format); two batches claiming the same ones in
		// another order may deadlock, and Commit tries again. The holder is read by a statement of its own, whose
		// snapshot sees a row committed while the insert waited.
		var etag string
		err := tx.QueryRow(ctx, `INSERT INTO contents (bucket, key, content_sha256, etag) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING RETURNING etag`, o.Bucket, o.Key, o.SHA256, o.ETag).Scan(&etag)
		if errors.Is(err, pgx.ErrNoRows) {
			err = tx.QueryRow(ctx, `SELECT etag FROM contents WHERE bucket = $1 AND key = $2 AND content_sha256 = $3`,
				o.Bucket, o.Key, o.SHA256).Scan(&etag)
		}
		if err != nil {
			return nil, fmt.Errorf("postgres: contents: %w", err)
		}
		if etag != o.ETag {
			lost = append(lost, ledger.Lost{Index: i, Outcome: ledger.DuplicateContent, Source: etag})
		}
	}
	return lost, nil
}
