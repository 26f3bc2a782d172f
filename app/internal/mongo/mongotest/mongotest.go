// Package mongotest gives integration tests a database of their own on the local stack's MongoDB wire server
// (FerretDB), dropped when the test ends. Like stacktest, it skips when MONGODB_URL is missing, unless
// AIRCRAFT_STACK=1, in which case it fails.
//
// The database is reached through a driver client of the test's own, apart from the store under test: tests that put
// records in by hand (as the seed's users had to) or look at what the store wrote use it, and the store's API keeps no
// hooks for them.
package mongotest

import (
	"context"
	"testing"
	"time"

	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// Collection is the records collection's name in a test database; the store's claims live in Collection + "_claims".
const Collection = "file_records"

// DB is a database of the test's own.
type DB struct {
	URL  string // the server's URI
	Name string // the database's name
	// Records is the records collection, for inserting or reading documents by hand.
	Records *driver.Collection
	// Claims is the store's claims collection.
	Claims *driver.Collection
}

// NewDB names a database for the test and drops it when the test ends.
func NewDB(t testing.TB) *DB {
	t.Helper()
	url := stacktest.Env(t, "MONGODB_URL")
	client, err := driver.Connect(options.Client().ApplyURI(url).SetAppName("aircraft-tests").SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatalf("mongodb at %s: %v", url, err)
	}
	name := stacktest.Name("test_lanes_")
	db := client.Database(name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = db.Drop(ctx)
		_ = client.Disconnect(ctx)
	})
	return &DB{URL: url, Name: name, Records: db.Collection(Collection), Claims: db.Collection(Collection + "_claims")}
}

// Store opens a store on the database, closed when the test ends.
func (d *DB) Store(t testing.TB) *mongo.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := mongo.Open(ctx, mongo.Options{URL: d.URL, Database: d.Name, Collection: Collection, AppName: "aircraft-tests"})
	if err != nil {
		t.Fatalf("mongodb at %s: %v", d.URL, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// Store opens a store on a database of the test's own.
func Store(t testing.TB) *mongo.Store {
	t.Helper()
	return NewDB(t).Store(t)
}
