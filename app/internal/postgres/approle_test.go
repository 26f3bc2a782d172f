package postgres_test

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/flight/flighttest"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/postgres/jobstore"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// The app role, made by the master after the migrations, does all the service's work (ingest, stats, jobs, leases) and
// cannot create, alter nor drop a table; a second start only sets its password again.
func TestAppRoleDoesTheWorkAndNoDDL(t *testing.T) {
	role, password := stacktest.Name("app_"), "it's a \\ pass'word"
	stacktest.DropRoleAtEnd(t, role)
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

	assertNoDDL(ctx, t, appURL, "the app role")
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

// assertNoDDL checks that the role of dbURL can create, alter, drop nor truncate no table, nor make a role or a
// database, nor change goose's version table, each from a connection of the role's own.
func assertNoDDL(ctx context.Context, t *testing.T, dbURL, who string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dbURL)
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
			t.Errorf("%s as %s: %v, want permission denied (42501)", ddl, who, err)
		}
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

// The worker role, made by the master, has no password (on RDS it logs in with IAM database auth tokens: rds_iam; here
// that role does not exist and nothing of it is granted), processes a batch as the Lambda worker does, with the app
// role's privileges, and cannot create, alter nor drop a table. A second start takes back any password.
func TestWorkerRoleProcessesABatchAndNoDDL(t *testing.T) {
	role := stacktest.Name("worker_")
	stacktest.DropRoleAtEnd(t, role)
	b := stacktest.Bucket(t)
	master, masterURL := stacktest.DB(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, stacktest.Env(t, "DB_ADMIN_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var rdsIAM bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam')`).Scan(&rdsIAM); err != nil {
		t.Fatal(err)
	}
	if iam, err := master.EnsureWorkerRole(ctx, role); err != nil || iam != rdsIAM {
		t.Fatalf("EnsureWorkerRole: IAM auth %v, %v; want %v (rds_iam exists: %v)", iam, err, rdsIAM, rdsIAM)
	}
	var super, createDB, createRole, login bool
	if err := admin.QueryRow(ctx, `SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = $1`,
		role).Scan(&super, &createDB, &createRole, &login); err != nil {
		t.Fatal(err)
	}
	if super || createDB || createRole || !login {
		t.Errorf("worker role: superuser %v, createdb %v, createrole %v, login %v; want only login", super, createDB, createRole, login)
	}

	// The test gives it a password (the IAM token's stand-in); the next start takes it back.
	const password = "worker's pass"
	setPassword := func() {
		t.Helper()
		if _, err := admin.Exec(ctx, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" PASSWORD '"+strings.ReplaceAll(password, "'", "''")+"'"); err != nil {
			t.Fatal(err)
		}
	}
	setPassword()
	workerURL := withUser(t, masterURL, role, password)
	if _, err := master.EnsureWorkerRole(ctx, role); err != nil {
		t.Fatalf("second EnsureWorkerRole: %v", err)
	}
	if c, err := pgx.Connect(ctx, workerURL); err == nil {
		c.Close(ctx)
		t.Error("a password given to the worker role still logs in after the next EnsureWorkerRole")
	}
	setPassword()

	// A batch, as the Lambda worker processes it: a snapshot ingested, a file cut mid-record quarantined.
	stacktest.Put(t, b, "w/20231101-000030Z.json", stacktest.Sample(t, "20231101-000030Z.json"))
	stacktest.Put(t, b, "w/cut.json", stacktest.Sample(t, "bad/20231101-000030Z.cut-mid-record.json"))
	var objs []bucket.Object
	if err := b.List(ctx, "w/", func(page []bucket.Object) error { objs = append(objs, page...); return nil }); err != nil {
		t.Fatal(err)
	}
	d := config.Defaults()
	worker, err := postgres.OpenMigrated(ctx, workerURL, postgres.ReadPool{MaxConns: d.DBReadMaxConns, Timeout: d.ReadTimeout}, nil)
	if err != nil {
		t.Fatalf("open as the worker role: %v", err)
	}
	defer worker.Close()
	svc := &ingest.Service{DB: worker, Bucket: b, Log: slog.New(slog.DiscardHandler), Workers: d.IngestWorkers, Limits: d.IngestLimits()}
	res, err := svc.Process(ctx, objs, ingest.Request{}, nil)
	if err != nil {
		t.Fatalf("process a batch as the worker role: %v", err)
	}
	if res.FilesIngested != 1 || res.FilesFailed != 1 {
		t.Errorf("batch as the worker role: %d files ingested, %d quarantined; want 1 and 1", res.FilesIngested, res.FilesFailed)
	}
	want := flighttest.Oracle{}
	want.Add(t, stacktest.Sample(t, "20231101-000030Z.json"))
	want.Check(t, master)

	assertNoDDL(ctx, t, workerURL, "the worker role")
}

// Where rds_iam exists (RDS), the worker role is made a member of it.
func TestWorkerRoleJoinsRDSIAM(t *testing.T) {
	role := stacktest.Name("worker_")
	stacktest.DropRoleAtEnd(t, role)
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, stacktest.Env(t, "DB_ADMIN_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	// rds_iam is the cluster's: made here only when missing, dropped at the end then (after the role's drop).
	if tag, err := admin.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') THEN CREATE ROLE rds_iam NOLOGIN; END IF; END $$`); err != nil {
		t.Fatal(err, tag)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `DROP ROLE IF EXISTS rds_iam`) })
	master, _ := stacktest.DB(t)
	if iam, err := master.EnsureWorkerRole(ctx, role); err != nil || !iam {
		t.Fatalf("EnsureWorkerRole with rds_iam: IAM auth %v, %v; want true", iam, err)
	}
	var member bool
	if err := admin.QueryRow(ctx, `SELECT pg_has_role($1, 'rds_iam', 'MEMBER')`, role).Scan(&member); err != nil || !member {
		t.Errorf("the worker role is a member of rds_iam: %v, %v; want true", member, err)
	}
}

// EnsureWorkerRole refuses what EnsureAppRole refuses: the master user and an owner of a table (a superuser too, which
// the stack's admin, like RDS's master, cannot make).
func TestWorkerRoleRefusesDangerousRoles(t *testing.T) {
	owner := stacktest.Name("owner_")
	stacktest.DropRoleAtEnd(t, owner)
	master, masterURL := stacktest.DB(t)
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, stacktest.Env(t, "DB_ADMIN_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	u, err := url.Parse(masterURL)
	if err != nil {
		t.Fatal(err)
	}
	// The master may give a table to a role it is a member of.
	if _, err := admin.Exec(ctx, "CREATE ROLE "+owner+" NOLOGIN; GRANT "+owner+" TO "+pgx.Identifier{u.User.Username()}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, masterURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "GRANT CREATE ON SCHEMA public TO "+owner+"; ALTER TABLE jobs OWNER TO "+owner); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{u.User.Username(), owner} {
		if _, err := master.EnsureWorkerRole(ctx, role); err == nil {
			t.Errorf("EnsureWorkerRole(%s): no error", role)
		}
	}
}
