package jobstore_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/postgres/jobstore"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// Job lookups (anonymous) read on the read pool: with every connection of the work's pool held (here its only one, by
// the ingestion lock), a lookup still answers.
func TestJobLookupsTakeNoWorkConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(stacktest.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "1")
	u.RawQuery = q.Encode()
	db, err := postgres.Open(ctx, u.String(), postgres.ReadPool{MaxConns: 2, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	unlock, err := db.Lock(ctx, "bucket", "") // holds the work's one connection
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	store := jobstore.New(db)
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if _, ok, err := store.LoadJob(short, "0123456789abcdef01234567"); err != nil || ok {
		t.Errorf("a job lookup with the work's pool busy: %v, %v; want no such job", ok, err)
	}
}
