package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3/lock"

	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// lastMigration is the highest version among the migration files of the source tree (their names' leading number).
func lastMigration(t *testing.T) int64 {
	t.Helper()
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for _, e := range entries {
		n, err := strconv.ParseInt(strings.SplitN(e.Name(), "_", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", e.Name(), err)
		}
		last = max(last, n)
	}
	return last
}

func openMigrated(ctx context.Context, dbURL string) (*postgres.DB, error) {
	d := config.Defaults()
	return postgres.OpenMigrated(ctx, dbURL, postgres.ReadPool{MaxConns: d.DBReadMaxConns, Timeout: d.ReadTimeout}, nil)
}

// The worker never migrates: against a database one migration behind, or never migrated, its open fails and says what
// to deploy, and the schema is left as it was.
func TestWorkerOpenRefusesASchemaBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	m := lastMigration(t)
	_, behindURL := stacktest.DB(t)
	conn, err := pgx.Connect(ctx, behindURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// One migration behind, as the version table sees it: the last one is not recorded.
	if _, err := conn.Exec(ctx, `DELETE FROM goose_db_version WHERE version_id = $1`, m); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, url string
		have      int64
	}{{"one migration behind", behindURL, m - 1}, {"never migrated", stacktest.Postgres(t), 0}} {
		db, err := openMigrated(ctx, c.url)
		if err == nil {
			db.Close()
			t.Errorf("%s: the worker opened", c.name)
			continue
		}
		want := fmt.Sprintf("schema at version %d, this worker needs %d", c.have, m)
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "deploy aircraftd first") {
			t.Errorf("%s: %v; want %q … deploy aircraftd first", c.name, err, want)
		}
	}
	var recorded bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM goose_db_version WHERE version_id = $1)`, m).Scan(&recorded); err != nil || recorded {
		t.Errorf("migration %d recorded after the worker's open: %v, %v; the worker migrated", m, recorded, err)
	}
}

// 16 workers open a migrated database at once, as a backfill's cold start does, while aircraftd holds goose's migration
// lock: none waits for it, and all open. The schema is one migration newer than the binary, as while a deploy replaces
// the workers: accepted.
func TestWorkerOpensTakeNoLock(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, dbURL := stacktest.DB(t)
	holder, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	if _, err := holder.Exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, lastMigration(t)+1); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, lock.DefaultLockID); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			db, err := openMigrated(ctx, dbURL)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
}
