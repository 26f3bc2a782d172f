// Package mongo keeps lane file records (lanes.Record) in MongoDB, Amazon
// DocumentDB or FerretDB, with the official Go driver.
//
// It uses only what all three offer, and nothing whose atomicity differs
// between them: inserts checked by a unique index (the claims, see
// claims.go), unordered bulk writes, updates by key and plain indexes. No
// transactions, change streams, aggregation pipelines or retryable writes are
// needed: DocumentDB's `retryWrites=false` is fine.
//
// Round trips are batched (one bulk write records a batch of outcomes; a
// download claims its whole hour with one insert): FerretDB, the local
// stack's server, spends about half a millisecond per updated document, and
// scans the collection for every filter but {_id: …}.
package mongo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"golang.org/x/sync/errgroup"

	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/tlscert"
)

// Options say where the records live.
type Options struct {
	URL        string // mongodb:// or mongodb+srv:// URI
	Database   string // MONGODB_DB_NAME
	Collection string // MONGODB_COLLECTION
	TLSCAFile  string // PEM bundle to verify the server with (DocumentDB: global-bundle.pem); turns TLS on
	AppName    string
	// ReadConns are the connections of the file list's own client
	// (MONGODB_READ_MAX_CONNS), apart from the work's (claims, download
	// records), so that a flood of lists never takes a connection a download
	// needs. Zero: the list shares the work's client.
	ReadConns int
}

// Store is the file record collection and its claims.
type Store struct {
	client *mongo.Client
	reads  *mongo.Client     // the file list's; client when Options.ReadConns is 0
	coll   *mongo.Collection // records
	listed *mongo.Collection // records, through reads
	claims *mongo.Collection // <collection>_claims: running downloads

	onTakeover func() // tests: runs between reading an expired claim and removing it
}

// Document fields (lanes.Record's bson names).
const (
	fKey       = "s3_key"
	fLane      = "lane_id"
	fTimestamp = "timestamp"
	fSize      = "size"
	fETag      = "etag"
	fVersion   = "version_id"
	fStatus    = "status"
	fLocalPath = "local_path"
	fAttempts  = "attempts"
	fLastError = "last_error"
	fChecksum  = "checksum"
	fUpdatedAt = "updated_at"
	fModified  = "last_modified"
)

// Open connects to the server and makes sure the collection's indexes exist.
// The connection itself is lazy: Open fails fast on a bad URI or CA file, and
// on an unreachable server only when ctx ends first.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.URL == "" {
		return nil, errors.New("mongodb: no URL (MONGODB_URL)")
	}
	if o.Database == "" || o.Collection == "" {
		return nil, errors.New("mongodb: no database or collection (MONGODB_DB_NAME, MONGODB_COLLECTION)")
	}
	copts := options.Client().ApplyURI(o.URL).SetServerSelectionTimeout(10 * time.Second)
	if o.AppName != "" {
		copts.SetAppName(o.AppName)
	}
	if o.TLSCAFile != "" {
		pool, err := tlscert.Pool(o.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("mongodb: CA file: %w", err)
		}
		copts.SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	// DocumentDB refuses retryable writes; MongoDB's URIs default them on.
	if isDocumentDB(o.URL) && !strings.Contains(strings.ToLower(o.URL), "retrywrites=") {
		copts.SetRetryWrites(false)
	}
	client, err := mongo.Connect(copts)
	if err != nil {
		return nil, fmt.Errorf("mongodb: %w", err)
	}
	// Records and claims are read from the primary, whatever the URI's
	// readPreference says: a claim or a status read from a lagging replica
	// could let two downloads take the same hour.
	primary := options.Database().SetReadPreference(readpref.Primary())
	db := client.Database(o.Database, primary)
	s := &Store{client: client, reads: client, coll: db.Collection(o.Collection), claims: db.Collection(o.Collection + "_claims")}
	if o.ReadConns > 0 {
		ropts := *copts
		ropts.SetMaxPoolSize(uint64(o.ReadConns)).SetMinPoolSize(0)
		if s.reads, err = mongo.Connect(&ropts); err != nil {
			_ = client.Disconnect(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("mongodb: %w", err)
		}
	}
	s.listed = s.reads.Database(o.Database, primary).Collection(o.Collection)
	if err := s.EnsureIndexes(ctx); err != nil {
		_ = s.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

func isDocumentDB(uri string) bool {
	u, err := url.Parse(uri)
	return err == nil && strings.Contains(u.Host, ".docdb.amazonaws.com")
}

// Close disconnects.
func (s *Store) Close(ctx context.Context) error {
	var err error
	if s.reads != s.client {
		err = s.reads.Disconnect(ctx)
	}
	return errors.Join(err, s.client.Disconnect(ctx))
}

// Ping checks the server answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("mongodb: %w", err)
	}
	return nil
}

// EnsureIndexes creates the collection's indexes when missing: a unique one
// on the key, one on (lane_id, timestamp, s3_key) for the hour queries,
// which it returns in that order without sorting in memory, and one on
// (status, s3_key) for the list's status filter, in the list's order. Indexes that
// exist are left alone and not created again (FerretDB 1.24 fails on a
// createIndexes of several indexes that already exist). The earlier
// (lane_id, timestamp) index, a prefix of the new one, is dropped.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	want := []struct {
		name string
		m    mongo.IndexModel
	}{
		{"s3_key_unique", mongo.IndexModel{Keys: bson.D{{Key: fKey, Value: 1}}, Options: options.Index().SetUnique(true).SetName("s3_key_unique")}},
		{hourIndex, mongo.IndexModel{Keys: bson.D{{Key: fLane, Value: 1}, {Key: fTimestamp, Value: 1}, {Key: fKey, Value: 1}}, Options: options.Index().SetName(hourIndex)}},
		{statusIndex, mongo.IndexModel{Keys: bson.D{{Key: fStatus, Value: 1}, {Key: fKey, Value: 1}}, Options: options.Index().SetName(statusIndex)}},
	}
	have := map[string]bool{}
	cur, err := s.coll.Indexes().List(ctx)
	if err == nil {
		var specs []struct {
			Name string `bson:"name"`
		}
		err = cur.All(ctx, &specs)
		for _, sp := range specs {
			have[sp.Name] = true
		}
	}
	if err != nil && !isNamespaceNotFound(err) {
		return fmt.Errorf("mongodb: list indexes: %w", err)
	}
	for _, w := range want {
		if have[w.name] {
			continue
		}
		if _, err := s.coll.Indexes().CreateOne(ctx, w.m); err != nil {
			return fmt.Errorf("mongodb: create index: %w", err)
		}
	}
	if have[oldHourIndex] {
		if err := s.coll.Indexes().DropOne(ctx, oldHourIndex); err != nil {
			return fmt.Errorf("mongodb: drop index %s: %w", oldHourIndex, err)
		}
	}
	return nil
}

// The hour queries' index, the one it replaces, and the status filter's.
const (
	hourIndex    = "lane_id_timestamp_s3_key"
	oldHourIndex = "lane_id_timestamp"
	statusIndex  = "status_s3_key"
)

// isNamespaceNotFound says whether err is "collection does not exist" (26).
func isNamespaceNotFound(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(26)
}

// registerBatch bounds the keys of one $in query and one bulk write.
const registerBatch = 1000

// Register adds records, idempotently: a record whose key is known and whose
// lane, timestamp, size and etag are unchanged is left alone; a changed one
// gets the new values and goes back to pending (its download is stale). A
// record's Size < 0, empty ETag or empty VersionID mean "unknown": they are
// neither compared nor overwritten. Status and the download fields of rs are
// ignored: new records are pending.
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
		if old.Status != string(lanes.Downloading) {
			// What was downloaded (or failed) is no longer the object. A
			// running download keeps its status; it records what it got.
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

// A bulk write is sent as commands of at most maxBulk operations, up to
// bulkParallel of them at once, so that the server can work on them with
// more than one core. Both are small because FerretDB 1.24 keeps one of its
// 100 SQLite connections per statement of an update command until the
// command ends (its handler defers closing each statement's query inside
// the loop over them): a command of 100 statements deadlocks and wedges
// the database until FerretDB restarts, and so do commands running at once
// that hold 100 between them. 2 × 16 per bulk write leaves room for
// several downloads at once.
const (
	maxBulk      = 16
	bulkParallel = 2
)

// bulkWrite runs models unordered and returns how many documents were
// modified.
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

// changes returns the $set of what r changes in old, and whether anything
// (lane, hour, size, etag, version) does.
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

// Query selects records (lanes.Query).
type Query = lanes.Query

// List returns the records of q in key order, through the reads' client.
func (s *Store) List(ctx context.Context, q Query) ([]lanes.Record, error) {
	opts := options.Find().SetSort(bson.D{{Key: fKey, Value: 1}})
	if q.Limit > 0 {
		opts.SetLimit(int64(q.Limit))
	}
	return find(ctx, s.listed, queryFilter(q), opts)
}

func queryFilter(q Query) bson.D {
	f := bson.D{}
	if q.LaneID != "" {
		f = append(f, bson.E{Key: fLane, Value: q.LaneID})
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		r := bson.D{}
		if !q.From.IsZero() {
			r = append(r, bson.E{Key: "$gte", Value: q.From.UTC()})
		}
		if !q.To.IsZero() {
			r = append(r, bson.E{Key: "$lt", Value: q.To.UTC()})
		}
		f = append(f, bson.E{Key: fTimestamp, Value: r})
	}
	if q.Status != "" {
		f = append(f, bson.E{Key: fStatus, Value: q.Status})
	}
	if q.After != "" {
		f = append(f, bson.E{Key: fKey, Value: bson.D{{Key: "$gt", Value: q.After}}})
	}
	return f
}

func find(ctx context.Context, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder) ([]lanes.Record, error) {
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongodb: find records: %w", err)
	}
	out := []lanes.Record{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("mongodb: read records: %w", err)
	}
	for i := range out {
		utc(&out[i])
	}
	return out, nil
}

func utc(r *lanes.Record) {
	r.Timestamp, r.UpdatedAt = r.Timestamp.UTC(), r.UpdatedAt.UTC()
	if r.Modified != nil {
		m := r.Modified.UTC()
		r.Modified = &m
	}
}

// ForHour's batches: the first small, so that a download starts on the
// first files of an hour while the server still reads the rest (MongoDB and
// DocumentDB walk the hour index in order; FerretDB, which uses no index
// for it, scans and sorts the hour first: about 20 ms for 200 records
// here), the others large, as every round trip costs the server a resumed
// scan.
const (
	hourFirstBatch = 16
	hourBatch      = 1000
)

// ForHour hands fn the records of h's lane whose timestamp falls in h, a
// batch at a time as the server returns them, in (timestamp, key) order: of
// two keys whose files share a local path, the one read first, and so
// downloaded, is the same on every server and in every request (without a
// sort, FerretDB on PostgreSQL returns updated records in another order).
// It stops at the first error, fn's included, and returns it.
func (s *Store) ForHour(ctx context.Context, h lanes.Hour, fn func([]lanes.Record) error) error {
	q := Query{LaneID: h.LaneID, From: h.Start, To: h.End()}
	cur, err := s.coll.Find(ctx, queryFilter(q), options.Find().SetBatchSize(hourFirstBatch).
		SetSort(bson.D{{Key: fTimestamp, Value: 1}, {Key: fKey, Value: 1}}))
	if err != nil {
		return fmt.Errorf("mongodb: find records: %w", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	cur.SetBatchSize(hourBatch)
	for cur.Next(ctx) {
		batch := make([]lanes.Record, 0, cur.RemainingBatchLength()+1)
		for {
			var r lanes.Record
			if err := cur.Decode(&r); err != nil {
				return fmt.Errorf("mongodb: read records: %w", err)
			}
			utc(&r)
			batch = append(batch, r)
			if cur.RemainingBatchLength() == 0 || !cur.Next(ctx) { // the batch received: no round trip
				break
			}
		}
		if err := fn(batch); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("mongodb: read records: %w", err)
	}
	return nil
}

// Get returns the record of key, or lanes.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (lanes.Record, error) {
	var r lanes.Record
	err := s.coll.FindOne(ctx, bson.D{{Key: fKey, Value: key}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return r, lanes.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("mongodb: get %s: %w", key, err)
	}
	utc(&r)
	return r, nil
}

// Update writes what happened to files. A file that started and ended
// since the last update gets a single write. Records are addressed by their
// document id: on FerretDB only {_id: …} finds a document without scanning
// the collection.
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
		if c.Started {
			// A value, not $inc: a change written twice (its batch failed
			// in part and its end carries the start again) counts once.
			set = append(set, bson.E{Key: fAttempts, Value: c.Record.Attempts + 1})
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
