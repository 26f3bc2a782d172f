package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/flight/flighttest"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// rieModule is the AWS Lambda Runtime Interface Emulator the tests run the worker under, as Lambda runs it: the
// bootstrap binary, the Runtime API, one invocation at a time per execution environment.
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// binaries builds the worker as bootstrap and the emulator, once per test binary run.
var binaries = sync.OnceValues(func() (dir string, err error) {
	dir, err = os.MkdirTemp("", "ingest-worker-rie-")
	if err != nil {
		return "", err
	}
	for _, cmd := range []*exec.Cmd{
		exec.Command("go", "build", "-o", filepath.Join(dir, "bootstrap"), "."),
		exec.Command("go", "install", rieModule),
	} {
		// Without cgo, as Lambda's binary is built: the race detector's cgo (make test-app) would make it one more
		// compile of every dependency.
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %v\n%s", cmd, err, out)
		}
	}
	return dir, nil
})

// function is one execution environment of the worker under the emulator.
type function struct{ url string }

// startFunction runs the worker under the emulator with the stack's variables and env, and stops it when the test ends.
func startFunction(t *testing.T, env ...string) function {
	t.Helper()
	dir, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	addr, api := freeAddr(t), freeAddr(t)
	cmd := exec.Command(filepath.Join(dir, "aws-lambda-rie"),
		"--runtime-interface-emulator-address", addr, "--runtime-api-address", api, filepath.Join(dir, "bootstrap"))
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "AWS_LAMBDA_FUNCTION_TIMEOUT=120", "INGEST_WORKERS=2")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("emulator at %s:\n%s", addr, logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator does not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return function{url: "http://" + addr + "/2015-03-31/functions/function/invocations"}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// functionError is a function error, in Lambda's error shape: aws-lambda-go names it by the handler error's Go type.
type functionError struct {
	Status  int
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *functionError) Error() string {
	return fmt.Sprintf("function error %s (HTTP %d): %s", e.Type, e.Status, e.Message)
}

// invoke sends event and decodes the answer into out; a function error (the handler's error) is returned as a
// *functionError.
func (f function) invoke(ctx context.Context, event, out any) error {
	body, err := json.Marshal(event)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fnErr := &functionError{Status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" ||
		(json.Unmarshal(answer, fnErr) == nil && fnErr.Type != "") {
		if fnErr.Type == "" {
			fnErr.Message = string(answer)
		}
		return fnErr
	}
	return json.Unmarshal(answer, out)
}

// retriedErrors are the function errors the backfill's state machine retries, by errorType: a copy of RetriedErrors in
// infra/pipeline/backfill.go, the source (the app does not import infra). Any other error fails the batch at once.
var retriedErrors = []string{
	"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException",
	"UnavailableError", "Sandbox.Timedout",
}

// mapRun is what the test driver does in place of a Step Functions Distributed Map: the ItemReader's listing
// (ListObjectsV2, items as it writes them), the ItemBatcher's batches of batchSize, at most as many children at once as
// functions, each retried up to retries times with backoff when its error is one the state machine retries
// (retriedErrors), failed at once otherwise. It returns the results and the errorType of each failed invocation. Every
// batch in again is sent twice, as when a child succeeds but its result is lost and the map runs it again. The first
// attempt of batch 0 goes to first, when set (an execution environment whose S3 is down).
func mapRun(ctx context.Context, b bucket.Bucket, fns []function, first *function, batchSize, retries int, again map[int]bool) ([]*ingest.Result, []string, error) {
	var items []map[string]any
	err := b.List(ctx, "", func(page []bucket.Object) error {
		for _, o := range page {
			items = append(items, map[string]any{
				"Key": o.Key, "Etag": `"` + o.ETag + `"`, "Size": o.Size,
				"LastModified": o.LastModified.Unix(), "StorageClass": "STANDARD",
			})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var batches []map[string]any
	for i := 0; i < len(items); i += batchSize {
		batches = append(batches, map[string]any{"Items": items[i:min(i+batchSize, len(items))], "BatchInput": map[string]any{}})
	}
	for i := range again {
		batches = append(batches, batches[i])
	}
	free := make(chan function, len(fns)) // MaxConcurrency: one child per execution environment
	for _, f := range fns {
		free <- f
	}
	results := make([]*ingest.Result, len(batches))
	var mu sync.Mutex
	var failures []string
	var g errgroup.Group
	for i, batch := range batches {
		g.Go(func() error {
			var err error
			for attempt := range retries + 1 {
				time.Sleep(time.Duration(attempt*attempt) * 100 * time.Millisecond)
				if i == 0 && attempt == 0 && first != nil {
					err = first.invoke(ctx, batch, &results[i])
				} else {
					f := <-free
					err = f.invoke(ctx, batch, &results[i])
					free <- f
				}
				if err == nil {
					return nil
				}
				var fe *functionError
				if !errors.As(err, &fe) {
					return fmt.Errorf("batch %d: %w", i, err)
				}
				mu.Lock()
				failures = append(failures, fe.Type)
				mu.Unlock()
				if !slices.Contains(retriedErrors, fe.Type) {
					return fmt.Errorf("batch %d failed, not retried: %w", i, err)
				}
			}
			return fmt.Errorf("batch %d failed %d times: %w", i, retries+1, err)
		})
	}
	err = g.Wait()
	return results, failures, err
}

// TestMapBatchesUnderEmulator runs a Distributed Map's batches of the real samples (the same snapshot under several
// keys, a file cut mid-record) through the worker binary under the Lambda emulator, 4 at once, one batch twice, one
// first sent where S3 is down (the invocation fails with errorType UnavailableError, and is retried): the statistics
// equal the oracle's and those of one API run (what POST /process-s3-data runs) over the same bucket.
func TestMapBatchesUnderEmulator(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	_, workersURL := stacktest.DB(t) // migrated, as aircraftd does: the worker never migrates
	apiURL := stacktest.Postgres(t)
	want := flighttest.Oracle{}
	for _, n := range []string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000315Z.json.gz", "20231101-000700Z.json.gz"} {
		for _, prefix := range []string{"a/", "b/"} { // each snapshot under two more keys: counted once
			stacktest.Put(t, b, prefix+n, stacktest.Sample(t, n))
		}
		if n != "20231101-000315Z.json.gz" { // the gzip copy of 000315Z; 000700Z's .gz is plain JSON
			want.Add(t, stacktest.Sample(t, n))
		}
	}
	stacktest.Put(t, b, "a/cut.json", stacktest.Sample(t, "bad/20231101-000030Z.cut-mid-record.json"))

	var fns []function
	for range 4 {
		fns = append(fns, startFunction(t, "DATABASE_URL="+workersURL, "S3_BUCKET="+b.Name))
	}
	s3Down := startFunction(t, "DATABASE_URL="+workersURL, "S3_BUCKET="+b.Name, "S3_ENDPOINT=http://"+freeAddr(t), "AWS_MAX_ATTEMPTS=1")
	results, failures, err := mapRun(ctx, b, fns, &s3Down, 2, 2, map[int]bool{1: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 1 || failures[0] != "UnavailableError" {
		t.Errorf("failed invocations' errorTypes: %q; want [UnavailableError] (the batch sent where S3 is down, retried as "+
			"the state machine retries a dependency's failure)", failures)
	}
	var ingested, failed int
	for _, r := range results {
		ingested += r.FilesIngested
		failed += r.FilesFailed
	}
	if ingested != 3 || failed != 1 {
		t.Errorf("batches ingested %d files and quarantined %d; want 3 (one per snapshot) and 1 (the cut file)", ingested, failed)
	}

	api := apiRun(t, apiURL, b)
	if api.FilesIngested != 3 || api.FilesFailed != 1 {
		t.Errorf("the API run ingested %d files and quarantined %d; want 3 and 1", api.FilesIngested, api.FilesFailed)
	}
	got := checkStats(t, workersURL, want)
	if fromAPI := checkStats(t, apiURL, want); got != fromAPI {
		t.Errorf("the workers' statistics differ from the API run's:\n%s\nAPI:\n%s", got, fromAPI)
	}
	if o := outcome(t, workersURL, "a/cut.json"); o != "failed" {
		t.Errorf("the cut file's ledger entry is %q, want failed (quarantined)", o)
	}
}

// TestQueueMessagesUnderEmulator sends the worker under the Lambda emulator an SQS batch of S3 notifications (keys
// URL-encoded as S3 writes them): a new snapshot lands in the statistics, and a corrupt file is quarantined and its
// message done, not delivered again. Sent again, nothing counts twice.
func TestQueueMessagesUnderEmulator(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	_, dbURL := stacktest.DB(t) // migrated, as aircraftd does: the worker never migrates
	const good, bad = "live/2023 11 01/000030Z+é.json", "live/2023 11 01/cut.json"
	stacktest.Put(t, b, good, stacktest.Sample(t, "20231101-000030Z.json"))
	stacktest.Put(t, b, bad, stacktest.Sample(t, "bad/20231101-000030Z.cut-mid-record.json"))
	want := flighttest.Oracle{}
	want.Add(t, stacktest.Sample(t, "20231101-000030Z.json"))

	var ev events.SQSEvent
	err := b.List(ctx, "live/", func(page []bucket.Object) error {
		for _, o := range page {
			n := events.S3Event{Records: []events.S3EventRecord{{
				EventVersion: "2.1", EventSource: "aws:s3", AWSRegion: "us-east-1", EventName: "ObjectCreated:Put",
				EventTime: o.LastModified,
				S3: events.S3Entity{
					Bucket: events.S3Bucket{Name: b.Name, Arn: "arn:aws:s3:::" + b.Name},
					Object: events.S3Object{Key: s3EventKey(o.Key), Size: o.Size, ETag: o.ETag, Sequencer: "0A"},
				},
			}}}
			body, err := json.Marshal(n)
			if err != nil {
				return err
			}
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: o.Key, Body: string(body), EventSource: "aws:sqs"})
		}
		return nil
	})
	if err != nil || len(ev.Records) != 2 {
		t.Fatalf("listing: %d objects, %v", len(ev.Records), err)
	}
	fn := startFunction(t, "DATABASE_URL="+dbURL, "S3_BUCKET="+b.Name)
	for range 2 {
		var resp events.SQSEventResponse
		if err := fn.invoke(ctx, ev, &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("messages to deliver again: %+v; want none (the cut file is quarantined)", resp.BatchItemFailures)
		}
	}
	checkStats(t, dbURL, want)
	if o := outcome(t, dbURL, bad); o != "failed" {
		t.Errorf("%s: ledger entry %q, want failed (quarantined)", bad, o)
	}
	if o := outcome(t, dbURL, good); o != "ingested" {
		t.Errorf("%s: ledger entry %q, want ingested", good, o)
	}
}

// s3EventKey encodes a key as S3 event notifications do (form encoding: spaces as +).
func s3EventKey(key string) string {
	var b strings.Builder
	for _, c := range []byte(key) {
		switch {
		case c == ' ':
			b.WriteByte('+')
		case c == '/' || c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// apiRun ingests the bucket as POST /process-s3-data does, in one run of the service as aircraftd configures it by
// default, into the database at dbURL.
func apiRun(t *testing.T, dbURL string, b bucket.Bucket) *ingest.Result {
	t.Helper()
	ctx := context.Background()
	db, err := stacktest.OpenDB(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := config.Defaults()
	svc := &ingest.Service{DB: db, Bucket: b, Workers: d.IngestWorkers, Limits: d.IngestLimits()}
	run, err := svc.Begin(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := run.Ingest(ctx, ingest.Request{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkStats compares the database's statistics with the oracle's and returns them as text (sums rounded: the order of
// a float sum is the batches').
func checkStats(t *testing.T, dbURL string, want flighttest.Oracle) string {
	t.Helper()
	ctx := context.Background()
	db, err := stacktest.OpenDB(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want.Check(t, db)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	var text string
	if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(string_agg(concat_ws(' ', icao, registration,
		registration_at, type, type_at, observations, first_seen, last_seen, altitude_count,
		round(altitude_sum::numeric, 3), altitude_max, speed_count, round(speed_sum::numeric, 3), speed_max,
		emergencies), E'\n' ORDER BY icao), '') FROM aircraft_stats`).Scan(&n, &text); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("aircraft stored: %d, want %d", n, len(want))
	}
	return text
}

// outcome is the ledger's outcome of key ("" when absent).
func outcome(t *testing.T, dbURL, key string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var o string
	if err := conn.QueryRow(ctx, `SELECT outcome FROM ingested_objects WHERE key = $1`, key).Scan(&o); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return o
}
