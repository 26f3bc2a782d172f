// Package mongo keeps lane file records (lanes.Record) in MongoDB, Amazon DocumentDB or FerretDB, with the official Go
// driver.
//
// It uses only what all three offer, and nothing whose atomicity differs between them: inserts checked by a unique
// index (the claims, see claims.go), unordered bulk writes, updates by key and plain indexes. No transactions, change
// streams, aggregation pipelines or retryable writes are needed: DocumentDB's `retryWrites=false` is fine.
//
// Round trips are batched (one bulk write records a batch of outcomes; a download claims its whole hour with one
// insert): FerretDB, the local stack's server, spends about half a millisecond per updated document, and scans the
// collection for every filter but {_id: …}.
package mongo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

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
	// ReadConns are the connections of the file list's own client (MONGODB_READ_MAX_CONNS), apart from the work's
	// (claims, download records), so that a flood of lists never takes a connection a download needs. Zero: the list
	// shares the work's client.
	ReadConns int
	// Monitor, if set, gives the pool monitor of a client by name ("work", "read") and its most connections: the pool
	// stats of the metrics.
	Monitor func(pool string, max uint64) *event.PoolMonitor
}

// defaultMaxPoolSize is the driver's default most connections of a client.
const defaultMaxPoolSize = 100

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

// Open connects to the server and makes sure the collection's indexes exist. The connection itself is lazy: Open fails
// fast on a bad URI or CA file, and on an unreachable server only when ctx ends first.
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
	monitor := func(c *options.ClientOptions, pool string) {
		if o.Monitor == nil {
			return
		}
		if c.MaxPoolSize == nil {
			c.SetMaxPoolSize(defaultMaxPoolSize) // the driver's default, made explicit for the metrics
		}
		c.SetPoolMonitor(o.Monitor(pool, *c.MaxPoolSize))
	}
	monitor(copts, "work")
	client, err := mongo.Connect(copts)
	if err != nil {
		return nil, fmt.Errorf("mongodb: %w", err)
	}
	// Records and claims are read from the primary, whatever the URI's readPreference says: a claim or a status read
	// from a lagging replica could let two downloads take the same hour.
	primary := options.Database().SetReadPreference(readpref.Primary())
	db := client.Database(o.Database, primary)
	s := &Store{client: client, reads: client, coll: db.Collection(o.Collection), claims: db.Collection(o.Collection + "_claims")}
	if o.ReadConns > 0 {
		ropts := *copts
		ropts.SetMaxPoolSize(uint64(o.ReadConns)).SetMinPoolSize(0)
		monitor(&ropts, "read")
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

// EnsureIndexes creates the collection's indexes when missing: a unique one on the key, one on (lane_id, timestamp,
// s3_key) for the hour queries, which it returns in that order without sorting in memory, and one on (status, s3_key)
// for the list's status filter, in the list's order. Indexes that exist are left alone and not created again (FerretDB
// 1.24 fails on a createIndexes of several indexes that already exist). The earlier (lane_id, timestamp) index, a
// prefix of the new one, is dropped.
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

// isNamespaceNotFound reports whether err is "collection does not exist" (26).
func isNamespaceNotFound(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(26)
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

// ForHour's batches: the first small, so that a download starts on the first files of an hour while the server still
// reads the rest (MongoDB and DocumentDB walk the hour index in order; FerretDB, which uses no index for it, scans and
// sorts the hour first: about 20 ms for 200 records here), the others large, as every round trip costs the server a
// resumed scan.
const (
	hourFirstBatch = 16
	hourBatch      = 1000
)

// ForHour hands fn the records of h's lane whose timestamp falls in h, a batch at a time as the server returns them, in
// (timestamp, key) order: of two keys whose files share a local path, the one read first, and so downloaded, is the
// same on every server and in every request (without a sort, FerretDB on PostgreSQL returns updated records in another
// order). It stops at the first error, fn's included, and returns it.
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
