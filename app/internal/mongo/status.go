package mongo

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/aircraftdata/platform/app/internal/lanes"
)

// Update writes what happened to files: the fields of each record that its change sets (lanes.Change.Apply: the status
// rules are package lanes's), one bulk write for them all. A file that started and ended since the last update gets a
// single write. It writes nothing when a change breaks the rules (lanes.Change.Check). Records are addressed by their
// document id: on FerretDB only {_id: …} finds a document without scanning the collection.
func (s *Store) Update(ctx context.Context, cs []lanes.Change, now time.Time) error {
	if len(cs) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(cs))
	for _, c := range cs {
		if err := c.Check(); err != nil {
			return fmt.Errorf("mongodb: record download status: %w", err)
		}
		r := c.Apply(now)
		set := bson.D{{Key: fUpdatedAt, Value: r.UpdatedAt}, {Key: fStatus, Value: r.Status}}
		var unset bson.D
		switch r.Status {
		case lanes.Downloaded:
			set = append(set, bson.E{Key: fLocalPath, Value: r.LocalPath}, bson.E{Key: fSize, Value: r.Size},
				bson.E{Key: fChecksum, Value: r.Checksum})
			if r.ETag != "" {
				set = append(set, bson.E{Key: fETag, Value: r.ETag})
			}
			if r.VersionID != "" {
				set = append(set, bson.E{Key: fVersion, Value: r.VersionID})
			}
			unset = bson.D{{Key: fLastError, Value: ""}}
		case lanes.Failed:
			set = append(set, bson.E{Key: fLastError, Value: r.LastError})
		}
		if c.Started {
			// A value, not $inc: a change written twice (its batch failed in part and its end carries the start again)
			// counts once.
			set = append(set, bson.E{Key: fAttempts, Value: r.Attempts})
		}
		update := bson.D{{Key: "$set", Value: set}}
		if len(unset) > 0 {
			update = append(update, bson.E{Key: "$unset", Value: unset})
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

// A bulk write is sent as commands of at most maxBulk operations, up to bulkParallel of them at once, so that the
// server can work on them with more than one core. Both are small because FerretDB 1.24 keeps one of its 100 SQLite
// connections per statement of an update command until the command ends (its handler defers closing each statement's
// query inside the loop over them): a command of 100 statements deadlocks and wedges the database until FerretDB
// restarts, and so do commands running at once that hold 100 between them. 2 × 16 per bulk write leaves room for
// several downloads at once.
const (
	maxBulk      = 16
	bulkParallel = 2
)

// bulkWrite runs models unordered and returns how many documents were modified.
func (s *Store) bulkWrite(ctx context.Context, models []mongo.WriteModel) (int, error) {
	var modified atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(bulkParallel)
	for chunk := range slices.Chunk(models, maxBulk) {
		g.Go(func() error {
			bw, err := s.coll.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(false))
			if err != nil {
				return err
			}
			modified.Add(bw.ModifiedCount)
			return nil
		})
	}
	err := g.Wait()
	return int(modified.Load()), err
}
