package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aircraftdata/platform/app/internal/lanes"
)

// registerBatch bounds the keys of one $in query and one bulk write.
const registerBatch = 1000

// Register adds records, idempotently: a record whose key is known and whose lane, timestamp, size and etag are
// unchanged is left alone; a changed one gets the new values and goes back to pending (its download is stale). A
// record's Size < 0, empty ETag or empty VersionID mean "unknown": they are neither compared nor overwritten. Status
// and the download fields of rs are ignored: new records are pending.
func (s *Store) Register(ctx context.Context, rs []lanes.Record, now time.Time) (lanes.RegisterResult, error) {
	var total lanes.RegisterResult
	for len(rs) > 0 {
		n := min(len(rs), registerBatch)
		res, err := s.registerBatch(ctx, rs[:n], now)
		if err != nil {
			return total, err
		}
		total.Add(res)
		rs = rs[n:]
	}
	return total, nil
}

type known struct {
	ID        any       `bson:"_id"`
	Key       string    `bson:"s3_key"`
	LaneID    string    `bson:"lane_id"`
	Timestamp time.Time `bson:"timestamp"`
	Size      int64     `bson:"size"`
	ETag      string    `bson:"etag"`
	VersionID string    `bson:"version_id"`
	Status    string    `bson:"status"`
}

func (s *Store) registerBatch(ctx context.Context, rs []lanes.Record, now time.Time) (lanes.RegisterResult, error) {
	var res lanes.RegisterResult
	// Last one wins within a call.
	byKey := make(map[string]lanes.Record, len(rs))
	keys := make([]string, 0, len(rs))
	for _, r := range rs {
		if _, dup := byKey[r.Key]; !dup {
			keys = append(keys, r.Key)
		}
		byKey[r.Key] = r
	}
	res.Unchanged = len(rs) - len(keys) // repeats within the call

	cur, err := s.coll.Find(ctx, bson.D{{Key: fKey, Value: bson.D{{Key: "$in", Value: keys}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: fKey, Value: 1}, {Key: fLane, Value: 1}, {Key: fTimestamp, Value: 1},
			{Key: fSize, Value: 1}, {Key: fETag, Value: 1}, {Key: fVersion, Value: 1}, {Key: fStatus, Value: 1}}))
	if err != nil {
		return res, fmt.Errorf("mongodb: find records: %w", err)
	}
	var existing []known
	if err := cur.All(ctx, &existing); err != nil {
		return res, fmt.Errorf("mongodb: read records: %w", err)
	}
	have := make(map[string]known, len(existing))
	for _, k := range existing {
		have[k.Key] = k
	}

	var inserts []any
	var models []mongo.WriteModel
	for _, key := range keys {
		r := byKey[key]
		r.Timestamp = r.Timestamp.UTC().Truncate(time.Millisecond) // BSON dates hold milliseconds
		old, ok := have[key]
		if !ok {
			inserts = append(inserts, newDoc(r, now))
			continue
		}
		set, changed := changes(old, r)
		if !changed {
			res.Unchanged++
			continue
		}
		set = append(set, bson.E{Key: fUpdatedAt, Value: now})
		update := bson.D{{Key: "$set", Value: set}}
		if lanes.CanMove(lanes.Status(old.Status), lanes.Pending) {
			// What was downloaded (or failed) is no longer the object. A running download keeps its status
			// (lanes.Status: it records what it got).
			set = append(set, bson.E{Key: fStatus, Value: lanes.Pending}, bson.E{Key: fAttempts, Value: 0})
			update = bson.D{{Key: "$set", Value: set},
				{Key: "$unset", Value: bson.D{{Key: fLastError, Value: ""}, {Key: fChecksum, Value: ""}, {Key: fLocalPath, Value: ""}}}}
		}
		models = append(models, mongo.NewUpdateOneModel().SetFilter(idFilter(lanes.Record{ID: old.ID, Key: key})).SetUpdate(update))
	}
	if len(inserts) > 0 {
		// A duplicate is a record registered concurrently: unchanged.
		dup, err := insertMany(ctx, s.coll, inserts)
		if err != nil {
			return res, fmt.Errorf("mongodb: register records: %w", err)
		}
		for _, d := range dup {
			if d {
				res.Unchanged++
			} else {
				res.Added++
			}
		}
	}
	modified, err := s.bulkWrite(ctx, models)
	if err != nil {
		return res, fmt.Errorf("mongodb: update records: %w", err)
	}
	res.Updated += modified
	res.Unchanged += len(models) - modified
	return res, nil
}

func newDoc(r lanes.Record, now time.Time) bson.D {
	d := bson.D{
		{Key: "_id", Value: r.Key}, // the key is unique: the id FerretDB can find without a scan
		{Key: fKey, Value: r.Key},
		{Key: fLane, Value: r.LaneID},
		{Key: fTimestamp, Value: r.Timestamp},
		{Key: fSize, Value: max(r.Size, 0)},
		{Key: fStatus, Value: lanes.Pending},
		{Key: fAttempts, Value: 0},
		{Key: fUpdatedAt, Value: now},
	}
	if r.ETag != "" {
		d = append(d, bson.E{Key: fETag, Value: r.ETag})
	}
	if r.VersionID != "" {
		d = append(d, bson.E{Key: fVersion, Value: r.VersionID})
	}
	if r.Modified != nil {
		d = append(d, bson.E{Key: fModified, Value: r.Modified.UTC()})
	}
	return d
}

// changes returns the $set of what r changes in old, and whether anything (lane, hour, size, etag, version) does.
func changes(old known, r lanes.Record) (bson.D, bool) {
	var set bson.D
	changed := false
	if old.LaneID != r.LaneID {
		set, changed = append(set, bson.E{Key: fLane, Value: r.LaneID}), true
	}
	if !old.Timestamp.Equal(r.Timestamp) {
		set, changed = append(set, bson.E{Key: fTimestamp, Value: r.Timestamp}), true
	}
	if r.Size >= 0 && old.Size != r.Size {
		set, changed = append(set, bson.E{Key: fSize, Value: r.Size}), true
	}
	if r.ETag != "" && old.ETag != r.ETag {
		set, changed = append(set, bson.E{Key: fETag, Value: r.ETag}), true
		if r.VersionID == "" {
			set = append(set, bson.E{Key: fVersion, Value: ""}) // the old version is no longer what the record names
		}
	}
	if r.VersionID != "" && old.VersionID != r.VersionID {
		set, changed = append(set, bson.E{Key: fVersion, Value: r.VersionID}), true
	}
	if changed && r.Modified != nil {
		set = append(set, bson.E{Key: fModified, Value: r.Modified.UTC()})
	}
	return set, changed
}

// insertMany inserts docs unordered and reports which failed on a duplicate key; any other failure is an error.
func insertMany(ctx context.Context, c *mongo.Collection, docs []any) (dup []bool, err error) {
	dup = make([]bool, len(docs))
	_, err = c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return dup, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return nil, err
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 && we.Code != 11001 || we.Index < 0 || we.Index >= len(docs) {
			return nil, err
		}
		dup[we.Index] = true
	}
	return dup, nil
}
