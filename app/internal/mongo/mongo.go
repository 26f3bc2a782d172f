// Package mongo keeps lane file records (lanes.Record) in MongoDB, Amazon
// DocumentDB or FerretDB, with the official Go driver.
//
// It uses only what all three offer: single-document atomic updates
// (findAndModify), unordered bulk writes, $setOnInsert upserts and plain
// indexes. No transactions, change streams, aggregation pipelines in updates
// or retryable writes are needed: DocumentDB's `retryWrites=false` is fine.
//
// A download claims a record with a lease: one findOneAndUpdate that only
// matches when the record is not being downloaded, or when the lease of the
// download that holds it has expired (its instance died). So two requests,
// on one instance or many, never download the same file at the same time,
// and a crashed instance's claims free themselves.
package mongo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/aircraftdata/platform/app/internal/lanes"
)

// Errors of the store.
var (
	ErrNotFound  = errors.New("no such file record")
	ErrClaimed   = errors.New("file is being downloaded by another request")
	ErrLeaseLost = errors.New("download lease lost: another request took the file over")
	ErrChanged   = errors.New("the record was re-registered with another etag during the download")
)

// Options say where the records live.
type Options struct {
	URL        string // mongodb:// or mongodb+srv:// URI
	Database   string // default s3_files
	Collection string // default file_records
	TLSCAFile  string // PEM bundle to verify the server with (DocumentDB: global-bundle.pem); turns TLS on
	AppName    string
}

// Store is the file record collection.
type Store struct {
	client *mongo.Client
	coll   *mongo.Collection
}

// Document fields beyond lanes.Record's: the lease of a running download.
const (
	fKey        = "s3_key"
	fLane       = "lane_id"
	fTimestamp  = "timestamp"
	fSize       = "size"
	fETag       = "etag"
	fVersion    = "version_id"
	fStatus     = "status"
	fLocalPath  = "local_path"
	fAttempts   = "attempts"
	fLastError  = "last_error"
	fChecksum   = "checksum"
	fUpdatedAt  = "updated_at"
	fModified   = "last_modified"
	fLeaseOwner = "lease_owner"
	fLeaseUntil = "lease_until"
)

// Open connects to the server and makes sure the collection's indexes exist.
// The connection itself is lazy: Open fails fast on a bad URI or CA file, and
// on an unreachable server only when ctx ends first.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.URL == "" {
		return nil, errors.New("mongodb: no URL (MONGODB_URL)")
	}
	if o.Database == "" {
		o.Database = "s3_files"
	}
	if o.Collection == "" {
		o.Collection = "file_records"
	}
	copts := options.Client().ApplyURI(o.URL).SetServerSelectionTimeout(10 * time.Second)
	if o.AppName != "" {
		copts.SetAppName(o.AppName)
	}
	if o.TLSCAFile != "" {
		pem, err := os.ReadFile(o.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("mongodb: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mongodb: CA file %s holds no PEM certificate", o.TLSCAFile)
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
	s := &Store{client: client, coll: client.Database(o.Database).Collection(o.Collection)}
	if err := s.EnsureIndexes(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

func isDocumentDB(uri string) bool {
	u, err := url.Parse(uri)
	return err == nil && strings.Contains(u.Host, ".docdb.amazonaws.com")
}

// Close disconnects.
func (s *Store) Close(ctx context.Context) error { return s.client.Disconnect(ctx) }

// Ping checks the server answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("mongodb: %w", err)
	}
	return nil
}

// EnsureIndexes creates the collection's indexes when missing: a unique one
// on the key and one on (lane_id, timestamp) for the hour queries.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	_, err := s.coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: fKey, Value: 1}}, Options: options.Index().SetUnique(true).SetName("s3_key_unique")},
		{Keys: bson.D{{Key: fLane, Value: 1}, {Key: fTimestamp, Value: 1}}, Options: options.Index().SetName("lane_id_timestamp")},
	})
	if err != nil {
		return fmt.Errorf("mongodb: create indexes: %w", err)
	}
	return nil
}

// Drop removes the collection (tests).
func (s *Store) Drop(ctx context.Context) error { return s.coll.Drop(ctx) }

// Collection is the underlying collection (tests insert records by hand, as
// the seed's users had to).
func (s *Store) Collection() *mongo.Collection { return s.coll }

// RegisterResult counts what a registration did.
type RegisterResult struct {
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

func (r *RegisterResult) add(o RegisterResult) {
	r.Added += o.Added
	r.Updated += o.Updated
	r.Unchanged += o.Unchanged
}

// registerBatch bounds the keys of one $in query and one bulk write.
const registerBatch = 1000

// Register adds records, idempotently: a record whose key is known and whose
// lane, timestamp, size and etag are unchanged is left alone; a changed one
// gets the new values and goes back to pending (its download is stale). A
// record's Size < 0, empty ETag or empty VersionID mean "unknown": they are
// neither compared nor overwritten. Status and the download fields of rs are
// ignored: new records are pending.
func (s *Store) Register(ctx context.Context, rs []lanes.Record, now time.Time) (RegisterResult, error) {
	var total RegisterResult
	for len(rs) > 0 {
		n := min(len(rs), registerBatch)
		res, err := s.registerBatch(ctx, rs[:n], now)
		if err != nil {
			return total, err
		}
		total.add(res)
		rs = rs[n:]
	}
	return total, nil
}

type known struct {
	Key       string    `bson:"s3_key"`
	LaneID    string    `bson:"lane_id"`
	Timestamp time.Time `bson:"timestamp"`
	Size      int64     `bson:"size"`
	ETag      string    `bson:"etag"`
	VersionID string    `bson:"version_id"`
	Status    string    `bson:"status"`
}

func (s *Store) registerBatch(ctx context.Context, rs []lanes.Record, now time.Time) (RegisterResult, error) {
	var res RegisterResult
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
		options.Find().SetProjection(bson.D{{Key: fKey, Value: 1}, {Key: fLane, Value: 1}, {Key: fTimestamp, Value: 1},
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

	var models []mongo.WriteModel
	for _, key := range keys {
		r := byKey[key]
		r.Timestamp = r.Timestamp.UTC().Truncate(time.Millisecond) // BSON dates hold milliseconds
		old, ok := have[key]
		if !ok {
			models = append(models, mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: fKey, Value: key}}).
				SetUpdate(bson.D{{Key: "$setOnInsert", Value: newDoc(r, now)}}).
				SetUpsert(true))
			continue
		}
		set, changed := changes(old, r)
		if !changed {
			res.Unchanged++
			continue
		}
		set = append(set, bson.E{Key: fUpdatedAt, Value: now})
		if old.Status == string(lanes.Downloading) {
			// Leave the running download its claim; it will find the
			// object changed when it finishes (Finish checks the etag).
			models = append(models, mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: fKey, Value: key}}).
				SetUpdate(bson.D{{Key: "$set", Value: set}}))
			continue
		}
		set = append(set, bson.E{Key: fStatus, Value: lanes.Pending}, bson.E{Key: fAttempts, Value: 0})
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: fKey, Value: key}}).
			SetUpdate(bson.D{{Key: "$set", Value: set},
				{Key: "$unset", Value: bson.D{{Key: fLastError, Value: ""}, {Key: fChecksum, Value: ""}, {Key: fLocalPath, Value: ""}}}}))
	}
	if len(models) == 0 {
		return res, nil
	}
	bw, err := s.coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if err != nil && !onlyDuplicateKeys(err) {
		return res, fmt.Errorf("mongodb: register records: %w", err)
	}
	var added, updated int
	if bw != nil {
		added, updated = int(bw.UpsertedCount), int(bw.ModifiedCount)
	}
	// Whatever was neither added nor modified was registered concurrently
	// with the same values, or lost an upsert race on the unique index.
	res.Added += added
	res.Updated += updated
	res.Unchanged += len(models) - added - updated
	return res, nil
}

// onlyDuplicateKeys says whether a bulk write failed only because concurrent
// upserts of the same keys raced on the unique index (DocumentDB does not
// retry those itself).
func onlyDuplicateKeys(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 && we.Code != 11001 {
			return false
		}
	}
	return true
}

func newDoc(r lanes.Record, now time.Time) bson.D {
	d := bson.D{
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

// Query selects records. Zero fields select everything.
type Query struct {
	LaneID   string
	From, To time.Time // timestamp in [From, To)
	Status   lanes.Status
	After    string // keys after this one (paging)
	Limit    int    // 0 = no limit
}

// List returns the records of q in key order.
func (s *Store) List(ctx context.Context, q Query) ([]lanes.Record, error) {
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
	opts := options.Find().SetSort(bson.D{{Key: fKey, Value: 1}})
	if q.Limit > 0 {
		opts.SetLimit(int64(q.Limit))
	}
	cur, err := s.coll.Find(ctx, f, opts)
	if err != nil {
		return nil, fmt.Errorf("mongodb: list records: %w", err)
	}
	out := []lanes.Record{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("mongodb: read records: %w", err)
	}
	for i := range out {
		out[i].Timestamp = out[i].Timestamp.UTC()
		out[i].UpdatedAt = out[i].UpdatedAt.UTC()
	}
	return out, nil
}

// Get returns the record of key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (lanes.Record, error) {
	var r lanes.Record
	err := s.coll.FindOne(ctx, bson.D{{Key: fKey, Value: key}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("mongodb: get %s: %w", key, err)
	}
	r.Timestamp, r.UpdatedAt = r.Timestamp.UTC(), r.UpdatedAt.UTC()
	return r, nil
}

// Claim marks the record of key as downloading by owner until now+lease and
// counts an attempt, atomically: it fails with ErrClaimed while another
// owner's unexpired lease holds it, ErrNotFound when there is no record.
func (s *Store) Claim(ctx context.Context, key, owner string, now time.Time, lease time.Duration) (lanes.Record, error) {
	filter := bson.D{
		{Key: fKey, Value: key},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: fStatus, Value: bson.D{{Key: "$ne", Value: lanes.Downloading}}}},
			bson.D{{Key: fLeaseUntil, Value: bson.D{{Key: "$lt", Value: now}}}},
			bson.D{{Key: fLeaseOwner, Value: owner}},
		}},
	}
	update := bson.D{
		{Key: "$set", Value: bson.D{
			{Key: fStatus, Value: lanes.Downloading},
			{Key: fLeaseOwner, Value: owner},
			{Key: fLeaseUntil, Value: now.Add(lease)},
			{Key: fUpdatedAt, Value: now},
		}},
		{Key: "$inc", Value: bson.D{{Key: fAttempts, Value: 1}}},
	}
	var r lanes.Record
	err := s.coll.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		if _, gerr := s.Get(ctx, key); errors.Is(gerr, ErrNotFound) {
			return r, ErrNotFound
		}
		return r, ErrClaimed
	}
	if err != nil {
		return r, fmt.Errorf("mongodb: claim %s: %w", key, err)
	}
	r.Timestamp, r.UpdatedAt = r.Timestamp.UTC(), r.UpdatedAt.UTC()
	return r, nil
}

// Renew extends owner's lease on key to until, or fails with ErrLeaseLost.
func (s *Store) Renew(ctx context.Context, key, owner string, until time.Time) error {
	res, err := s.coll.UpdateOne(ctx,
		bson.D{{Key: fKey, Value: key}, {Key: fLeaseOwner, Value: owner}, {Key: fStatus, Value: lanes.Downloading}},
		bson.D{{Key: "$set", Value: bson.D{{Key: fLeaseUntil, Value: until}}}})
	if err != nil {
		return fmt.Errorf("mongodb: renew lease on %s: %w", key, err)
	}
	if res.MatchedCount == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Outcome is how a claimed download ended.
type Outcome struct {
	Status    lanes.Status // Downloaded or Failed
	LocalPath string
	ETag      string // of what is on disk; a record whose etag changed meanwhile goes back to pending
	VersionID string
	Size      int64
	Checksum  string
	Error     string
}

// Finish records the outcome of owner's download of key and releases the
// claim. It fails with ErrLeaseLost when the claim is no longer owner's, and
// with ErrChanged (leaving the record pending) when a download succeeded but
// the record was re-registered with another etag meanwhile.
func (s *Store) Finish(ctx context.Context, key, owner string, o Outcome, now time.Time) error {
	set := bson.D{{Key: fStatus, Value: o.Status}, {Key: fUpdatedAt, Value: now}}
	unset := bson.D{{Key: fLeaseOwner, Value: ""}, {Key: fLeaseUntil, Value: ""}}
	filter := bson.D{{Key: fKey, Value: key}, {Key: fLeaseOwner, Value: owner}}
	if o.Status == lanes.Downloaded {
		set = append(set,
			bson.E{Key: fLocalPath, Value: o.LocalPath},
			bson.E{Key: fSize, Value: o.Size},
			bson.E{Key: fChecksum, Value: o.Checksum})
		if o.VersionID != "" {
			set = append(set, bson.E{Key: fVersion, Value: o.VersionID})
		}
		unset = append(unset, bson.E{Key: fLastError, Value: ""})
		if o.ETag != "" {
			// Only if the record still names what was downloaded.
			filter = append(filter, bson.E{Key: "$or", Value: bson.A{
				bson.D{{Key: fETag, Value: o.ETag}},
				bson.D{{Key: fETag, Value: bson.D{{Key: "$exists", Value: false}}}},
				bson.D{{Key: fETag, Value: ""}},
			}})
			set = append(set, bson.E{Key: fETag, Value: o.ETag})
		}
	} else {
		set = append(set, bson.E{Key: fLastError, Value: o.Error})
	}
	res, err := s.coll.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: set}, {Key: "$unset", Value: unset}})
	if err != nil {
		return fmt.Errorf("mongodb: finish %s: %w", key, err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	if o.Status == lanes.Downloaded && o.ETag != "" {
		// Re-registered with another etag while downloading: what is on
		// disk is stale; release the claim as pending.
		res, err = s.coll.UpdateOne(ctx, bson.D{{Key: fKey, Value: key}, {Key: fLeaseOwner, Value: owner}},
			bson.D{{Key: "$set", Value: bson.D{{Key: fStatus, Value: lanes.Pending}, {Key: fUpdatedAt, Value: now}}},
				{Key: "$unset", Value: unset}})
		if err != nil {
			return fmt.Errorf("mongodb: finish %s: %w", key, err)
		}
		if res.MatchedCount == 1 {
			return ErrChanged
		}
	}
	return ErrLeaseLost
}
