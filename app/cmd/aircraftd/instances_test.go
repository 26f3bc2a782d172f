package main

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// Two aircraftd processes on one database: a job started on one is read on
// the other (jobs are kept in PostgreSQL); when the first is killed, the
// second answers the job failed "instance lost" once the lease has run out,
// and the second then runs the ingestion itself, exactly.
func TestJobsAcrossTwoInstances(t *testing.T) {
	env, _, b := stackEnv(t)
	for _, n := range ingestSamples {
		stacktest.Put(t, b, n, stacktest.Sample(t, n))
	}
	env["JOBS_LEASE_SECONDS"] = "2"
	endpoint, gets := throttled(t)
	slow := map[string]string{"S3_ENDPOINT": endpoint, "INGEST_WORKERS": "1"}
	for k, v := range env {
		slow[k] = v
	}
	a, other := startDaemon(t, slow), startDaemon(t, env)

	status, job, hdr := a.call(t, "POST", "/process-s3-data?async=true", nil, time.Minute)
	if status != http.StatusAccepted {
		t.Fatalf("async ingest on A: %d %v", status, job)
	}
	loc := hdr.Get("Location")
	waitForGets(t, gets)
	status, seen, _ := other.call(t, "GET", loc, nil, 10*time.Second)
	if status != http.StatusOK || seen["id"] != job["id"] || seen["state"] != "running" || seen["kind"] != "ingest" {
		t.Fatalf("A's job read on B: %d %v", status, seen)
	}
	// Only one ingestion at a time, across instances.
	if status, _, _ := other.call(t, "POST", "/process-s3-data", nil, time.Minute); status != http.StatusConflict {
		t.Errorf("ingest on B while A runs one: %d, want 409", status)
	}

	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	a.done <- nil
	deadline := time.Now().Add(time.Minute)
	for {
		_, seen, _ = other.call(t, "GET", loc, nil, 10*time.Second)
		if seen["state"] != "running" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if seen["state"] != "failed" || seen["error"] != "instance lost" || seen["finished"] == nil {
		t.Errorf("A's job after A was killed: %v, want failed: instance lost", seen)
	}

	status, job, hdr = other.call(t, "POST", "/process-s3-data?async=true", nil, time.Minute)
	if status != http.StatusAccepted {
		t.Fatalf("async ingest on B: %d %v", status, job)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		_, job, _ = other.call(t, "GET", hdr.Get("Location"), nil, 10*time.Second)
		if job["state"] != "running" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if job["state"] != "succeeded" {
		t.Errorf("B's ingestion: %v", job)
	}
	other.stop(t)
	checkExactStatistics(t, env["DATABASE_URL"])
}
