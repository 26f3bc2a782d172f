// Package mongotest gives integration tests a store of their own on the
// local stack's MongoDB wire server (FerretDB): a fresh database per test,
// dropped when the test ends. Like stacktest, it skips when MONGODB_URL is
// missing, unless AIRCRAFT_STACK=1, in which case it fails.
package mongotest

import (
	"context"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// Store opens a store on a database of the test's own.
func Store(t testing.TB) *mongo.Store {
	t.Helper()
	url := stacktest.Env(t, "MONGODB_URL")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := mongo.Open(ctx, mongo.Options{URL: url, Database: stacktest.Name("test_lanes_"), Collection: "file_records", AppName: "aircraft-tests"})
	if err != nil {
		t.Fatalf("mongodb at %s: %v", url, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.DropDatabase(ctx)
		_ = s.Close(ctx)
	})
	return s
}
