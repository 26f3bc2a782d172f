package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// The API's reads have a pool of their own, read-only and under a statement timeout; readiness has a connection of its
// own: a flood of reads cannot take a connection the work needs, nor make readiness wait.
func TestReadsHaveAPoolOfTheirOwn(t *testing.T) {
	db, err := postgres.Open(t.Context(), stacktest.Postgres(t), postgres.ReadPool{MaxConns: 1, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	if err := db.ReadExec(ctx, `SELECT pg_sleep(10)`); sqlState(err) != "57014" {
		t.Errorf("a long read: %v, want statement_timeout (57014)", err)
	}
	if err := db.ReadExec(ctx, `CREATE TABLE nope (id int)`); sqlState(err) != "25006" {
		t.Errorf("a write on the read pool: %v, want read-only transaction (25006)", err)
	}

	// Every read connection busy: the work and readiness go on; a read waits.
	release, err := db.HoldAll(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Known(ctx, "b", []ledger.Object{{Key: "k", ETag: "e"}}); err != nil {
		t.Errorf("the work with every read connection busy: %v", err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("ping with every read connection busy: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	if _, err := db.Reads().Aircraft(short, "", 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a read with every read connection busy: %v, want it to wait for one", err)
	}
	cancelShort()
	release()

	// Every work connection busy (a long ingestion): reads and readiness go on.
	release, err = db.HoldAll(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := db.Reads().Aircraft(ctx, "", 10); err != nil {
		t.Errorf("a read with every work connection busy: %v", err)
	}
	if _, err := db.Reads().FailedFiles(ctx, "b", "", 10); err != nil {
		t.Errorf("failed files with every work connection busy: %v", err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("ping with every work connection busy: %v", err)
	}
	db.Reads().Close() // a view: closes nothing
	if err := db.Ping(ctx); err != nil {
		t.Errorf("ping after closing the Reads view: %v", err)
	}
}
