package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aircraftdata/platform/app/internal/lanes"
)

// Claims.
//
// A download claims its files before fetching them, so that two requests
// (on one instance or many) never fetch the same file at the same time. A
// claim is a document {_id: s3_key, owner, until} in the collection
// "<collection>_claims": inserting it is the claim, and the unique _id makes
// that atomic on every server, FerretDB included, whose findAndModify and
// updates are not atomic (FerretDB issue #3040: its SQLite handler reads and
// writes without a transaction; 16 racing findOneAndUpdate claims gave 6
// winners in our tests). Inserts also batch: one insertMany claims a batch
// of records.
//
// A claim lasts until `until` and its owner renews it while working, and
// lets all its claims go at once when done (Release). A
// claim whose owner died expires; taking it over is made atomic by first
// inserting a takeover token named after the expired claim's owner: only
// one taker can insert it.

type claimDoc struct {
	ID    string    `bson:"_id"` // s3 key
	Owner string    `bson:"owner"`
	Until time.Time `bson:"until"`
}

// claimBatch bounds one insertMany or $in list of claims.
const claimBatch = 1000

// Claim claims keys for owner until now+lease: won are now owner's, held
// are claimed by another owner whose lease has not expired. Claiming writes
// no record: the download records that it started (Update) when it does.
func (s *Store) Claim(ctx context.Context, keys []string, owner string, now time.Time, lease time.Duration) (won, held []string, err error) {
	for chunk := range slices.Chunk(dedupe(keys), claimBatch) {
		w, h, err := s.claimChunk(ctx, chunk, owner, now, lease)
		if err != nil {
			s.release(ctx, won, owner)
			return nil, nil, err
		}
		won = append(won, w...)
		held = append(held, h...)
	}
	return won, held, nil
}

// Release lets all of owner's claims go, once its download has ended. A
// claim left behind by a failed release expires.
func (s *Store) Release(ctx context.Context, owner string) error {
	if _, err := s.claims.DeleteMany(ctx, bson.D{{Key: "owner", Value: owner}}); err != nil {
		return fmt.Errorf("mongodb: release claims: %w", err)
	}
	return nil
}

func (s *Store) claimChunk(ctx context.Context, keys []string, owner string, now time.Time, lease time.Duration) (won, held []string, err error) {
	docs := make([]any, len(keys))
	for i, k := range keys {
		docs[i] = claimDoc{ID: k, Owner: owner, Until: now.Add(lease)}
	}
	dup, err := insertMany(ctx, s.claims, docs)
	if err != nil {
		return nil, nil, fmt.Errorf("mongodb: claim: %w", err)
	}
	var taken []string
	for i, k := range keys {
		if dup[i] {
			taken = append(taken, k)
		} else {
			won = append(won, k)
		}
	}
	if len(taken) == 0 {
		return won, nil, nil
	}

	// Claims held by others: take over the expired ones.
	cur, err := s.claims.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: taken}}}})
	if err != nil {
		return nil, nil, fmt.Errorf("mongodb: read claims: %w", err)
	}
	var others []claimDoc
	if err := cur.All(ctx, &others); err != nil {
		return nil, nil, fmt.Errorf("mongodb: read claims: %w", err)
	}
	current := make(map[string]claimDoc, len(others))
	for _, c := range others {
		current[c.ID] = c
	}
	for _, k := range taken {
		c, ok := current[k]
		switch {
		case ok && c.Owner == owner:
			won = append(won, k) // ours already (a retry)
		case ok && !c.Until.Before(now):
			held = append(held, k)
		default: // expired, or released since the insert
			got, err := s.takeOver(ctx, c, ok, k, owner, now, lease)
			if err != nil {
				return nil, nil, err
			}
			if got {
				won = append(won, k)
			} else {
				held = append(held, k)
			}
		}
	}
	return won, held, nil
}

// takeOver replaces an expired claim (or claims a released one) for owner.
func (s *Store) takeOver(ctx context.Context, old claimDoc, existed bool, key, owner string, now time.Time, lease time.Duration) (bool, error) {
	if existed {
		// Only one taker gets to remove this expired claim: the one that
		// inserts the token named after it.
		token := bson.D{{Key: "_id", Value: bson.D{{Key: "takeover", Value: key}, {Key: "from", Value: old.Owner}, {Key: "until", Value: old.Until}}}}
		dup, err := insertMany(ctx, s.claims, []any{token})
		if err != nil {
			return false, fmt.Errorf("mongodb: take over claim: %w", err)
		}
		if dup[0] {
			return false, nil
		}
		defer func() { _, _ = s.claims.DeleteOne(context.WithoutCancel(ctx), token) }()
		if _, err := s.claims.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "owner", Value: old.Owner}}); err != nil {
			return false, fmt.Errorf("mongodb: take over claim: %w", err)
		}
	}
	dup, err := insertMany(ctx, s.claims, []any{claimDoc{ID: key, Owner: owner, Until: now.Add(lease)}})
	if err != nil {
		return false, fmt.Errorf("mongodb: claim: %w", err)
	}
	return !dup[0], nil
}

// Renew extends every claim of owner to until.
func (s *Store) Renew(ctx context.Context, owner string, until time.Time) error {
	if _, err := s.claims.UpdateMany(ctx, bson.D{{Key: "owner", Value: owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "until", Value: until}}}}); err != nil {
		return fmt.Errorf("mongodb: renew claims: %w", err)
	}
	return nil
}

// Update writes what happened to files. A file that started and ended
// since the last update gets a single write. Records are addressed by their
// document id: on FerretDB only {_id: …} finds a document without scanning
// the collection. Claims are left alone: the download releases them all at
// its end (Release), one round trip instead of one per update, and one
// scan of the claims on FerretDB.
func (s *Store) Update(ctx context.Context, cs []lanes.Change, now time.Time) error {
	if len(cs) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(cs))
	for _, c := range cs {
		set := bson.D{{Key: fUpdatedAt, Value: now}}
		var unset bson.D
		switch o := c.Outcome; {
		case o == nil:
			set = append(set, bson.E{Key: fStatus, Value: lanes.Downloading})
		case o.Status == lanes.Downloaded:
			set = append(set,
				bson.E{Key: fStatus, Value: lanes.Downloaded},
				bson.E{Key: fLocalPath, Value: o.LocalPath},
				bson.E{Key: fSize, Value: o.Size},
				bson.E{Key: fChecksum, Value: o.Checksum})
			if o.ETag != "" {
				set = append(set, bson.E{Key: fETag, Value: o.ETag})
			}
			if o.VersionID != "" {
				set = append(set, bson.E{Key: fVersion, Value: o.VersionID})
			}
			unset = bson.D{{Key: fLastError, Value: ""}}
		default:
			set = append(set, bson.E{Key: fStatus, Value: o.Status}, bson.E{Key: fLastError, Value: o.Error})
		}
		update := bson.D{{Key: "$set", Value: set}}
		if len(unset) > 0 {
			update = append(update, bson.E{Key: "$unset", Value: unset})
		}
		if c.Started {
			update = append(update, bson.E{Key: "$inc", Value: bson.D{{Key: fAttempts, Value: 1}}})
		}
		models = append(models, mongo.NewUpdateOneModel().SetFilter(idFilter(c.Record)).SetUpdate(update))
	}
	if _, err := s.bulkWrite(ctx, models); err != nil {
		return fmt.Errorf("mongodb: record download status: %w", err)
	}
	return nil
}

// idFilter selects r's document: by id when known, else by key.
func idFilter(r lanes.Record) bson.D {
	if r.ID != nil {
		return bson.D{{Key: "_id", Value: r.ID}}
	}
	return bson.D{{Key: fKey, Value: r.Key}}
}

// release removes owner's claims on keys (best effort: an unreleased claim
// expires).
func (s *Store) release(ctx context.Context, keys []string, owner string) {
	ctx = context.WithoutCancel(ctx)
	for chunk := range slices.Chunk(keys, claimBatch) {
		_, _ = s.claims.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: chunk}}}, {Key: "owner", Value: owner}})
	}
}

// insertMany inserts docs unordered and reports which failed on a duplicate
// key; any other failure is an error.
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

func dedupe(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
