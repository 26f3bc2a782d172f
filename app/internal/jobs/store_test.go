package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/postgres/jobstore"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// These tests share jobs through PostgreSQL: registries are instances, the test's own connection (sql) changes the
// database behind their back.

var quiet = slog.New(slog.DiscardHandler)

func instance(t *testing.T, db *postgres.DB, lease time.Duration) *jobs.Registry {
	t.Helper()
	r := jobs.NewRegistry(quiet, jobs.Limits{MaxRunning: 8, KeepFinished: 100, KeepFor: time.Hour})
	r.Share(jobstore.New(db), stacktest.Name("instance-"), lease)
	t.Cleanup(func() { r.Stop(errors.New("test over")) })
	return r
}

func sqlConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func exec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// blocked is a job that reports one file done and returns "done" when release is closed, or its context's error.
func blocked(release chan struct{}) jobs.Func {
	return func(ctx context.Context, p *progress.Counter) (any, error) {
		p.AddDone(1, 10)
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func get(t *testing.T, r *jobs.Registry, id string) jobs.View {
	t.Helper()
	v, ok, err := r.Get(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("job %s: found %v, %v", id, ok, err)
	}
	return v
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in 10 s", what)
		}
	}
}

// An instance whose clock is two hours behind still holds its lease: leases are reckoned by the database's clock, not
// by the writer's or the reader's.
func TestLeaseIsReckonedByTheDatabaseClock(t *testing.T) {
	db, _ := stacktest.DB(t)
	owner, reader := instance(t, db, time.Minute), instance(t, db, time.Minute)
	owner.SetClock(func() time.Time { return time.Now().Add(-2 * time.Hour) })
	release := make(chan struct{})
	j, err := owner.Start("ingest", "", blocked(release))
	if err != nil {
		t.Fatal(err)
	}
	if v := get(t, reader, j.ID); v.State != jobs.Running {
		t.Errorf("a job of an instance whose clock is behind, read elsewhere: %s %q, want running", v.State, v.Error)
	}
	close(release)
	eventually(t, "the job's end read elsewhere", func() bool { return get(t, reader, j.ID).State == jobs.Succeeded })
}

// Reading jobs writes nothing: an unknown job, a running one and one whose lease ran out ("instance lost") are read
// while any write to the table fails.
func TestReadingJobsWritesNothing(t *testing.T) {
	db, url := stacktest.DB(t)
	sql := sqlConn(t, url)
	reader := instance(t, db, time.Minute)
	exec(t, sql, `INSERT INTO jobs (id, kind, state, started, instance, lease_until) VALUES
		('healthy', 'ingest', 'running', now(), 'elsewhere', now() + interval '1 hour'),
		('lost', 'ingest', 'running', now() - interval '1 hour', 'gone', now() - interval '1 minute')`)
	exec(t, sql, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'a read wrote (%)', TG_OP; END $$`)
	exec(t, sql, `CREATE TRIGGER refuse BEFORE INSERT OR UPDATE OR DELETE ON jobs
		FOR EACH STATEMENT EXECUTE FUNCTION refuse()`)

	if _, ok, err := reader.Get(context.Background(), "unknown"); ok || err != nil {
		t.Errorf("an unknown job: found %v, %v", ok, err)
	}
	if v, _, err := reader.Get(context.Background(), "healthy"); v.State != jobs.Running || err != nil {
		t.Errorf("a running job: %+v, %v", v, err)
	}
	var leaseUntil time.Time
	if err := sql.QueryRow(context.Background(), `SELECT lease_until FROM jobs WHERE id = 'lost'`).Scan(&leaseUntil); err != nil {
		t.Fatal(err)
	}
	v, _, err := reader.Get(context.Background(), "lost")
	if err != nil || v.State != jobs.Failed || v.Error != "instance lost" || v.Finished == nil || !v.Finished.Equal(leaseUntil) {
		t.Errorf("a job whose lease ran out at %v: %+v, %v; want failed, instance lost, finished then", leaseUntil, v, err)
	}
}

// One statement renews the leases of all the running jobs of an instance, with their progress.
func TestRenewalIsOneStatement(t *testing.T) {
	db, url := stacktest.DB(t)
	sql := sqlConn(t, url)
	owner, reader := instance(t, db, time.Minute), instance(t, db, time.Minute)
	release := make(chan struct{})
	defer close(release)
	var ids []string
	for range 5 {
		j, err := owner.Start("download", "", blocked(release))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	eventually(t, "every job's progress", func() bool {
		for _, id := range ids {
			if get(t, owner, id).Progress.FilesDone != 1 {
				return false
			}
		}
		return true
	})
	exec(t, sql, `CREATE SEQUENCE writes`)
	exec(t, sql, `CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN PERFORM nextval('writes'); RETURN NULL; END $$`)
	exec(t, sql, `CREATE TRIGGER count_write AFTER INSERT OR UPDATE ON jobs
		FOR EACH STATEMENT EXECUTE FUNCTION count_write()`)
	exec(t, sql, `UPDATE jobs SET lease_until = now() + interval '10 seconds'`) // the first write counted
	owner.Renew()
	var statements int
	if err := sql.QueryRow(context.Background(), `SELECT last_value - 1 FROM writes`).Scan(&statements); err != nil {
		t.Fatal(err)
	}
	if statements != 1 {
		t.Errorf("renewing 5 jobs took %d statements, want 1", statements)
	}
	var renewed int
	if err := sql.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE lease_until > now() + interval '30 seconds'`).Scan(&renewed); err != nil {
		t.Fatal(err)
	}
	if renewed != len(ids) {
		t.Errorf("%d of %d leases renewed", renewed, len(ids))
	}
	for _, id := range ids {
		if v := get(t, reader, id); v.State != jobs.Running || v.Progress.FilesDone != 1 {
			t.Errorf("job %s read elsewhere after the renewal: %s, %d files done", id, v.State, v.Progress.FilesDone)
		}
	}
}

// An owner paused past its lease answers its job lost like every other instance (its renewal does not bring it back),
// then saves its real end, which every instance then answers.
func TestOwnerOverwritesInstanceLost(t *testing.T) {
	db, url := stacktest.DB(t)
	sql := sqlConn(t, url)
	owner, reader := instance(t, db, time.Minute), instance(t, db, time.Minute)
	release := make(chan struct{})
	j, err := owner.Start("ingest", "", blocked(release))
	if err != nil {
		t.Fatal(err)
	}
	// The owner was paused: its lease ran out a second ago.
	exec(t, sql, `UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1`, j.ID)
	for _, when := range []string{"paused", "resumed"} {
		a, b := get(t, owner, j.ID), get(t, reader, j.ID)
		if a.State != jobs.Failed || a.Error != "instance lost" || b.State != a.State || b.Error != a.Error ||
			a.Finished == nil || b.Finished == nil || !a.Finished.Equal(*b.Finished) {
			t.Errorf("%s: the owner answers %s %q %v, the other %s %q %v; want both failed: instance lost, "+
				"finished alike", when, a.State, a.Error, a.Finished, b.State, b.Error, b.Finished)
		}
		owner.Renew()
	}
	close(release)
	eventually(t, "the owner's answer after the job's end", func() bool { return get(t, owner, j.ID).State == jobs.Succeeded })
	a, b := get(t, owner, j.ID), get(t, reader, j.ID)
	if b.State != jobs.Succeeded || b.Error != "" || fmt.Sprintf("%s", b.Result) != `"done"` ||
		!a.Finished.Equal(*b.Finished) || !a.Started.Equal(b.Started) {
		t.Errorf("after the end: the owner answers %+v, the other %+v", a, b)
	}
}

// A job's end that the database refuses for a while is retried until it lands; at Stop, for one lease at most.
func TestJobEndIsRetriedUntilSaved(t *testing.T) {
	db, url := stacktest.DB(t)
	sql := sqlConn(t, url)
	lease := time.Second
	owner, reader := instance(t, db, lease), instance(t, db, lease)
	release := make(chan struct{})
	first, err := owner.Start("ingest", "", blocked(release))
	if err != nil {
		t.Fatal(err)
	}
	second, err := owner.Start("ingest", "", blocked(make(chan struct{})))
	if err != nil {
		t.Fatal(err)
	}
	exec(t, sql, `CREATE SEQUENCE attempts`)
	exec(t, sql, `CREATE FUNCTION refuse_end() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN PERFORM nextval('attempts'); RAISE EXCEPTION 'injected: the end is refused'; END $$`)
	exec(t, sql, `CREATE TRIGGER refuse_end BEFORE UPDATE ON jobs FOR EACH ROW
		WHEN (NEW.state <> 'running') EXECUTE FUNCTION refuse_end()`)
	attempts := func() int {
		var n int
		if err := sql.QueryRow(context.Background(), `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM attempts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	close(release)
	eventually(t, "a second attempt to save the end", func() bool { return attempts() >= 2 })
	if v := get(t, reader, first.ID); v.State != jobs.Running {
		t.Errorf("read elsewhere while its end is refused: %s, want still running", v.State)
	}
	exec(t, sql, `DROP TRIGGER refuse_end ON jobs`)
	eventually(t, "the end read elsewhere", func() bool { return get(t, reader, first.ID).State == jobs.Succeeded })

	exec(t, sql, `CREATE TRIGGER refuse_end BEFORE UPDATE ON jobs FOR EACH ROW
		WHEN (NEW.state <> 'running') EXECUTE FUNCTION refuse_end()`)
	before := attempts()
	stopped := make(chan struct{})
	go func() { owner.Stop(errors.New("shutdown")); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Stop still waits 30 s on an end the database refuses")
	}
	if n := attempts() - before; n < 2 {
		t.Errorf("Stop tried to save the end of the stopped job %d times, want it retried", n)
	}
	if v := get(t, reader, second.ID); v.State == jobs.Failed && v.Error == "shutdown" {
		t.Errorf("the refused end was saved: %+v", v)
	}
}
