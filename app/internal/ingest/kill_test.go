package ingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"testing"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/flight/flighttest"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// A worker process killed with SIGKILL while its transaction is open (held inside it, just before the statistics merge,
// by a trigger of the test) commits nothing: another worker, which was waiting for the killed one's ledger rows, wins
// them all and commits the whole batch, a rerun finds everything ingested, and the statistics equal the oracle's.
func TestKilledWorkerCommitsNothing(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, dbURL := stacktest.DB(t)
	rng := rand.New(rand.NewPCG(3, 4))
	pool := make([]string, 50)
	for i := range pool {
		pool[i] = fmt.Sprintf("e%05x", i)
	}
	want := flighttest.Oracle{}
	outcomes := map[string]string{}
	for i := range 12 {
		data := synthetic(rng, 1698810000+5*float64(i), pool)
		want.Add(t, data)
		for _, dir := range []string{"a/", "b/"}[:1+i%2] { // every other snapshot under two keys
			stacktest.Put(t, b, fmt.Sprintf("%s%02d.json", dir, i), data)
			outcomes[fmt.Sprintf("%s%02d.json", dir, i)] = fmt.Sprint("snapshot ", i)
		}
	}
	conn, release := pause(t, dbURL, "aircraft_stats", "victim")

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", "victim")
	u.RawQuery = q.Encode()
	victim := exec.Command(os.Args[0], "-test.run=^TestKilledWorkerHelper$", "-test.count=1", "-test.v")
	victim.Env = append(os.Environ(), "INGEST_TEST_VICTIM_DB="+u.String(), "INGEST_TEST_VICTIM_BUCKET="+b.Name)
	var out bytes.Buffer
	victim.Stdout, victim.Stderr = &out, &out
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = victim.Process.Kill()
			_ = victim.Wait()
		}
	}()
	waitFor(t, conn, `SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'victim' AND wait_event_type = 'Lock'`)

	rival := &Service{DB: db, Bucket: b, Log: slog.New(slog.DiscardHandler), Workers: 2, Limits: defaultLimits()}
	objs := listed(t, b)
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := rival.Process(ctx, objs, Request{}, nil)
		done <- outcome{res, err}
	}()
	// The rival waits for the victim's uncommitted ledger rows.
	waitFor(t, conn, `SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted`)

	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = victim.Wait()
	// The victim's backend goes on waiting for the trigger's lock; let go, it finds its client gone and rolls back.
	release()

	r := <-done
	if r.err != nil {
		t.Fatalf("the rival: %v", r.err)
	}
	if r.res.FilesIngested != 12 || r.res.SkippedByReason[reasonDuplicateSnapshot] != 6 {
		t.Fatalf("the rival: %+v; want all 12 snapshots ingested and 6 duplicates: the victim committed none", r.res)
	}
	res, err := rival.Process(ctx, objs, Request{}, nil)
	if err != nil || res.FilesIngested != 0 || res.SkippedByReason[reasonAlreadyIngested] != len(objs) {
		t.Fatalf("rerun: %+v, %v; want every file already ingested", res, err)
	}
	checkStored(t, db, dbURL, want, outcomes)
	if t.Failed() {
		t.Logf("the victim's output:\n%s", out.String())
	}
}

// TestKilledWorkerHelper is the worker TestKilledWorkerCommitsNothing runs as a process of its own, and kills.
func TestKilledWorkerHelper(t *testing.T) {
	dbURL := os.Getenv("INGEST_TEST_VICTIM_DB")
	if dbURL == "" {
		t.Skip("the worker that TestKilledWorkerCommitsNothing kills")
	}
	ctx := context.Background()
	db, err := stacktest.OpenDB(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	b := bucket.Bucket{Client: stacktest.S3(t), Name: os.Getenv("INGEST_TEST_VICTIM_BUCKET")}
	s := &Service{DB: db, Bucket: b, Workers: 2, Limits: defaultLimits()}
	res, err := s.Process(ctx, listed(t, b), Request{}, nil)
	t.Fatalf("the worker ended, which it should not: %+v, %v", res, err)
}
