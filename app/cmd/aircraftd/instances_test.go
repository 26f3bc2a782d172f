package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// Two aircraftd processes on one database: a job started on one is read on the other (jobs are kept in PostgreSQL);
// when the first is killed, the second answers the job failed "instance lost" once the lease has run out, and the
// second then runs the ingestion itself, exactly.
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

// laneHour uploads n files of size bytes each (distinct pseudo-random content, CRC32C checksums) to one lane hour and
// returns each key's bytes and its checksum as the record should report it, computed here from the bytes.
func laneHour(t *testing.T, b bucket.Bucket, n, size int) (data, sums map[string]string) {
	t.Helper()
	data, sums = map[string]string{}, map[string]string{}
	for i := range n {
		body := make([]byte, size)
		r := mrand.New(mrand.NewPCG(uint64(i), 17))
		for j := range body {
			body[j] = byte(r.Uint32())
		}
		k := fmt.Sprintf("lanes/lane1/2024/02/14/14/f%d.bin", i)
		if _, err := b.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.Name), Key: aws.String(k),
			Body: bytes.NewReader(body), ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c}); err != nil {
			t.Fatal(err)
		}
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
		data[k], sums[k] = string(body), "crc32c:"+base64.StdEncoding.EncodeToString(sum[:])
	}
	return data, sums
}

// checkHourOnDisk checks that every file of the hour is in dir with the uploaded bytes, that no temp file is left, and
// that every record is downloaded with its checksum.
func checkHourOnDisk(t *testing.T, store *mongo.Store, dir string, data, sums map[string]string) []lanes.Record {
	t.Helper()
	for k, want := range data {
		got, err := os.ReadFile(filepath.Join(dir, path.Base(k)))
		if err != nil || string(got) != want {
			t.Errorf("%s on disk: %d of %d bytes, %v", k, len(got), len(want), err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
	recs, err := store.List(context.Background(), lanes.Query{LaneID: "lane1"})
	if err != nil || len(recs) != len(data) {
		t.Fatalf("records: %d, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Status != lanes.Downloaded || r.Checksum != sums[r.Key] {
			t.Errorf("record %s: %s, checksum %q; want downloaded, %s", r.Key, r.Status, r.Checksum, sums[r.Key])
		}
	}
	return recs
}

// The same lane hour downloaded through two aircraftd processes at once, sharing one DOWNLOAD_PATH (EFS in the
// load-balanced mode): the hour's claim keeps them apart, so each file is fetched once (one GET at the S3 server, one
// attempt in its record, "downloaded" in one answer and "already present" in the other), and every file is there with
// the uploaded bytes.
func TestSameHourThroughTwoInstances(t *testing.T) {
	env, store, b := stackEnv(t)
	const files = 6
	data, sums := laneHour(t, b, files, 1<<20)
	endpoint, gets := throttled(t) // slow, so that the two requests overlap
	env["S3_ENDPOINT"], env["DOWNLOAD_WORKERS"] = endpoint, "2"
	a, other := startDaemon(t, env), startDaemon(t, env)
	if status, m, _ := a.call(t, "POST", "/api/v1/files/index", map[string]any{"prefix": "lanes/"}, time.Minute); status != 200 || m["added"] != float64(files) {
		t.Fatalf("index: %d %v", status, m)
	}

	type file struct {
		Key      string `json:"s3_key"`
		Outcome  string `json:"outcome"`
		Checksum string `json:"checksum"`
		Attempts int    `json:"attempts"`
	}
	type answer struct {
		status int
		res    struct {
			SuccessCount int    `json:"success_count"`
			Successful   []file `json:"successful"`
			Failures     []any  `json:"failures"`
		}
	}
	hour := []byte(`{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}`)
	answers := make([]answer, 2)
	var wg sync.WaitGroup
	for i, d := range []*daemon{a, other} {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", d.url+"/api/v1/download", bytes.NewReader(hour))
			req.Header.Set("Authorization", "Bearer "+shutdownToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
			if err != nil {
				t.Errorf("download through %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			answers[i].status = resp.StatusCode
			if err := json.NewDecoder(resp.Body).Decode(&answers[i].res); err != nil {
				t.Errorf("download through %d: %v", i, err)
			}
		})
	}
	wg.Wait()

	downloaded := map[string]int{}
	for i, an := range answers {
		if an.status != http.StatusOK || an.res.SuccessCount != files || len(an.res.Failures) != 0 {
			t.Errorf("download through %d: %d %+v", i, an.status, an.res)
		}
		for _, f := range an.res.Successful {
			if f.Checksum != sums[f.Key] {
				t.Errorf("download through %d: %s checksum %q, want %s", i, f.Key, f.Checksum, sums[f.Key])
			}
			if f.Outcome == "downloaded" {
				downloaded[f.Key]++
			} else if f.Outcome != "already present" {
				t.Errorf("download through %d: %s outcome %q", i, f.Key, f.Outcome)
			}
		}
	}
	for k := range data {
		if downloaded[k] != 1 {
			t.Errorf("%s downloaded %d times across the two answers, want once", k, downloaded[k])
		}
	}
	if n := gets.Load(); n != files {
		t.Errorf("the S3 server served %d object GETs for %d files", n, files)
	}
	for _, r := range checkHourOnDisk(t, store, filepath.Join(env["DOWNLOAD_PATH"], "lane1", "2024", "02", "14", "14"), data, sums) {
		if r.Attempts != 1 {
			t.Errorf("record %s: %d attempts, want 1", r.Key, r.Attempts)
		}
	}
	a.stop(t)
	other.stop(t)
}

// One of two aircraftd processes is killed (SIGKILL, as a lost instance) in the middle of a download of an hour: its
// claim holds the hour until its lease (DOWNLOAD_CLAIM_LEASE_SECONDS, short here) runs out, then the other process
// takes the hour over and completes it: every file with the uploaded bytes, no temp file of the killed one left.
func TestDownloadTakenOverAfterInstanceKilled(t *testing.T) {
	env, store, b := stackEnv(t)
	const files = 6
	data, sums := laneHour(t, b, files, 1<<20)
	env["DOWNLOAD_CLAIM_LEASE_SECONDS"] = "5"
	endpoint, gets := throttled(t)
	slow := map[string]string{"S3_ENDPOINT": endpoint, "DOWNLOAD_WORKERS": "2"}
	for k, v := range env {
		slow[k] = v
	}
	a, other := startDaemon(t, slow), startDaemon(t, env)
	if status, m, _ := a.call(t, "POST", "/api/v1/files/index", map[string]any{"prefix": "lanes/"}, time.Minute); status != 200 || m["added"] != float64(files) {
		t.Fatalf("index: %d %v", status, m)
	}
	hour := map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}
	if status, job, _ := a.call(t, "POST", "/api/v1/download?async=true", hour, time.Minute); status != http.StatusAccepted {
		t.Fatalf("async download on A: %d %v", status, job)
	}
	waitForGets(t, gets)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	a.done <- nil
	recs, err := store.List(context.Background(), lanes.Query{LaneID: "lane1"})
	if err != nil {
		t.Fatal(err)
	}
	done := 0
	for _, r := range recs {
		if r.Status == lanes.Downloaded {
			done++
		}
	}
	if done == files {
		t.Fatal("A had downloaded every file before it was killed: the test did not kill a download under way")
	}
	// The killed process's claim still holds the hour.
	if won, err := store.Claim(context.Background(), "lane1/2024/02/14/14", "probe", time.Now().UTC(), time.Second); err != nil || won {
		t.Fatalf("claiming the hour just after A was killed: won %v, %v; want A's claim to hold it", won, err)
	}

	status, res, _ := other.call(t, "POST", "/api/v1/download", hour, 2*time.Minute)
	if status != http.StatusOK || res["success_count"] != float64(files) {
		t.Fatalf("download on B after A was killed: %d %v", status, res)
	}
	checkHourOnDisk(t, store, filepath.Join(env["DOWNLOAD_PATH"], "lane1", "2024", "02", "14", "14"), data, sums)
	other.stop(t)
}

// Two aircraftd processes on one database, the owner of a job paused (SIGSTOP) past its lease, then resumed (SIGCONT):
// both give the same answer at every point. While the owner is paused the other answers the job failed "instance lost";
// once resumed the owner answers that too (its renewal does not bring the job back) until the job ends, when its real
// end overwrites "instance lost" and both answer it, alike to the field.
func TestPausedOwnerAndOtherInstanceAgree(t *testing.T) {
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
	owner, other := startDaemon(t, slow), startDaemon(t, env)
	status, job, hdr := owner.call(t, "POST", "/process-s3-data?async=true", nil, time.Minute)
	if status != http.StatusAccepted {
		t.Fatalf("async ingest on the owner: %d %v", status, job)
	}
	loc := hdr.Get("Location")
	waitForGets(t, gets)

	if err := owner.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := owner.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer resume()
	var seen map[string]any
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		_, seen, _ = other.call(t, "GET", loc, nil, 10*time.Second)
		if seen["state"] != "running" || time.Now().After(deadline) {
			break
		}
	}
	if seen["state"] != "failed" || seen["error"] != "instance lost" || seen["finished"] == nil {
		t.Fatalf("the job read elsewhere while its owner is paused: %v, want failed: instance lost", seen)
	}
	resume()

	// answer is what must be alike: all but the progress, which the owner knows fresher while the job runs.
	answer := func(d *daemon) string {
		status, m, _ := d.call(t, "GET", loc, nil, 10*time.Second)
		return fmt.Sprint(status, " ", m["state"], " ", m["error"], " ", m["started"], " ", m["finished"], " ", m["result"])
	}
	var last string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		before, elsewhere, after := answer(owner), answer(other), answer(owner)
		if before == after && elsewhere != before { // nothing changed while the other was asked
			t.Fatalf("the owner answers %s, the other instance %s", before, elsewhere)
		}
		if strings.Contains(before, "running") || strings.Contains(elsewhere, "running") {
			t.Fatalf("the job runs again after it was lost: the owner answers %s, the other %s", before, elsewhere)
		}
		last = after
		if strings.Contains(after, "succeeded") && after == answer(other) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.HasPrefix(last, "200 succeeded <nil> ") {
		t.Errorf("the job's end, answered by both: %s, want succeeded", last)
	}
	owner.stop(t)
	other.stop(t)
	checkExactStatistics(t, env["DATABASE_URL"])
}
