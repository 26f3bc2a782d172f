package postgres_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/postgres/jobstore"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// The app role, made by the master after the migrations, does all the service's work (ingest, stats, jobs, leases) and
// cannot create, alter nor drop a table; a second start only sets its password again.
func TestAppRoleDoesTheWorkAndNoDDL(t *testing.T) {
	role, password := stacktest.Name("app_"), "it's a \\ pass'word"
	dropRoleAtEnd(t, role)
	master, masterURL := stacktest.DB(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := master.EnsureAppRole(ctx, role, password); err != nil {
		t.Fatal(err)
	}
	// Again, as the next start does, with a new password: the old one no longer logs in.
	password = "new " + password
	if err := master.EnsureAppRole(ctx, role, password); err != nil {
		t.Fatalf("second EnsureAppRole: %v", err)
	}
	appURL := withUser(t, masterURL, role, password)
	if c, err := pgx.Connect(ctx, withUser(t, masterURL, role, "it's a \\ pass'word")); err == nil {
		c.Close(ctx)
		t.Error("the first password still logs in after the second EnsureAppRole")
	}

	app, err := stacktest.OpenDB(ctx, appURL) // migrations already applied: Open changes nothing
	if err != nil {
		t.Fatalf("open as the app role: %v", err)
	}
	defer app.Close()

	// Ingest (the temporary batch table, the stats upsert, the ledger), read stats, and the ledger's reads.
	agg := flight.Aggregate{}
	agg.Observe(flight.Observation{ICAO: "abc123", Registration: "N1", Type: "B738"}, 1_700_000_000_000)
	obj := ledger.Processed{
		Object:  ledger.Object{Bucket: "b", Key: "k1", ETag: "e1", Size: 1},
		Outcome: ledger.Ingested, SnapshotAt: time.UnixMilli(1_700_000_000_000), Observations: 1, SHA256: make([]byte, 32),
	}
	if err := app.Commit(ctx, []ledger.Processed{obj}, agg); err != nil {
		t.Fatalf("ingest as the app role: %v", err)
	}
	if s, err := app.Reads().Stats(ctx, "abc123"); err != nil || s.ICAO != "abc123" {
		t.Errorf("stats as the app role: %+v, %v", s, err)
	}
	if known, err := app.Known(ctx, "b", []ledger.Object{obj.Object}); err != nil || len(known) != 1 {
		t.Errorf("ledger as the app role: %v, %v", known, err)
	}
	unlock, err := app.Lock(ctx, "b", "p/")
	if err != nil {
		t.Fatalf("ingestion lock as the app role: %v", err)
	}
	unlock()

	// Jobs and their leases.
	js := jobstore.New(app)
	v := jobs.View{ID: "j1", Kind: "ingest", State: jobs.Running}
	if _, err := js.StartJob(ctx, v, "i1", time.Minute); err != nil {
		t.Fatalf("start a job as the app role: %v", err)
	}
	if err := js.RenewJobs(ctx, "i1", []jobs.View{v}, time.Minute); err != nil {
		t.Errorf("renew a job's lease as the app role: %v", err)
	}
	v.State = jobs.Succeeded
	if _, err := js.EndJob(ctx, v, "i1"); err != nil {
		t.Errorf("end a job as the app role: %v", err)
	}
	if got, ok, err := js.LoadJob(ctx, "j1"); err != nil || !ok || got.State != jobs.Succeeded {
		t.Errorf("load a job as the app role: %+v %v %v", got, ok, err)
	}
	if err := js.PruneJobs(ctx, 0, time.Nanosecond); err != nil {
		t.Errorf("prune jobs as the app role: %v", err)
	}

	// No DDL, from a connection of the role's own.
	conn, err := pgx.Connect(ctx, appURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, ddl := range []string{
		`CREATE TABLE nope (id int)`,
		`CREATE TABLE public.nope (id int)`,
		`DROP TABLE jobs`,
		`ALTER TABLE jobs ADD COLUMN nope int`,
		`ALTER TABLE aircraft_stats RENAME TO nope`,
		`TRUNCATE jobs`,
		`CREATE ROLE nope`,
		`CREATE DATABASE nope`,
		`DELETE FROM goose_db_version`,
	} {
		if _, err := conn.Exec(ctx, ddl); sqlState(err) != "42501" {
			t.Errorf("%s as the app role: %v, want permission denied (42501)", ddl, err)
		}
	}
}

// EnsureAppRole refuses to make the master user, whose password it would change, its app role.
func TestAppRoleIsNotTheMaster(t *testing.T) {
	master, masterURL := stacktest.DB(t)
	u, err := url.Parse(masterURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := master.EnsureAppRole(t.Context(), u.User.Username(), "x"); err == nil {
		t.Error("EnsureAppRole of the master user: no error")
	}
}

func withUser(t *testing.T, dbURL, user, password string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// dropRoleAtEnd drops a test's role (roles are the cluster's) once the test's database, which holds its privileges, is
// gone: it is registered before the database.
func dropRoleAtEnd(t *testing.T, role string) {
	admin := stacktest.Env(t, "DB_ADMIN_URL")
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
}
