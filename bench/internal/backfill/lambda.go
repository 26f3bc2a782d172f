package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/aircraftdata/platform/bench/internal/proc"
	"github.com/aircraftdata/platform/infra/appbuild"
	"github.com/aircraftdata/platform/test/local"
)

// rieModule is the AWS Lambda Runtime Interface Emulator, the version app/cmd/ingest-worker/rie_test.go runs the worker
// under.
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// lambdaMemoryMB is the function's memory by default (infra/pipeline): the worker's soft memory limit is 3/4 of it.
const lambdaMemoryMB = 1769

// buildLambda builds the worker as bootstrap, with the release build's flags for this machine (the function's own is
// arm64), and the emulator, into dir.
func buildLambda(root, dir string) (bootstrap, rie string, err error) {
	appDir := filepath.Join(root, "app")
	build := exec.Command("go", append(append([]string{}, appbuild.Args...), filepath.Join(dir, "bootstrap"), "./cmd/ingest-worker")...)
	build.Dir, build.Env = appDir, appbuild.Env("amd64")
	if tc, err := appbuild.Toolchain(filepath.Join(root, "go.work")); err != nil {
		return "", "", err
	} else if tc != "" {
		build.Env = append(build.Env, "GOTOOLCHAIN="+tc)
	}
	install := exec.Command("go", "install", rieModule)
	install.Env = append(os.Environ(), "GOBIN="+dir)
	for _, cmd := range []*exec.Cmd{build, install} {
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("%s: %v\n%s", cmd, err, out)
		}
	}
	return filepath.Join(dir, "bootstrap"), filepath.Join(dir, "aws-lambda-rie"), nil
}

// function is one execution environment: the worker under the emulator, which runs it as its child.
type function struct {
	cmd *exec.Cmd
	url string
}

// startFunction runs bootstrap under the emulator rie with env only (and the emulator's own variables), its output
// appended to log.
func startFunction(ctx context.Context, rie, bootstrap string, env []string, log io.Writer) (*function, error) {
	addr, err := local.FreeAddr()
	if err != nil {
		return nil, err
	}
	api, err := local.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", api, bootstrap)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &function{cmd: cmd, url: "http://" + addr + "/2015-03-31/functions/function/invocations"}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return f, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.stop()
			return nil, fmt.Errorf("the emulator does not listen on %s: %v", addr, err)
		}
	}
}

// usage is the CPU seconds of the worker (the emulator's children: the bootstrap) and of the emulator itself so far,
// and the worker's peak RSS in bytes.
func (f *function) usage() (worker, emulator float64, peakRSS int64, err error) {
	pid := f.cmd.Process.Pid
	children := proc.Children(pid)
	if len(children) == 0 {
		return 0, 0, 0, fmt.Errorf("the emulator %d runs no worker", pid)
	}
	for _, c := range children {
		worker += proc.CPU(c)
		rss, err := local.PeakRSS(c)
		if err != nil {
			return 0, 0, 0, err
		}
		peakRSS = max(peakRSS, rss)
	}
	return worker, proc.CPU(pid), peakRSS, nil
}

func (f *function) stop() {
	_ = f.cmd.Process.Kill()
	_ = f.cmd.Wait()
}

// batchResult is what the worker answers for a map batch (ingest.Result, the fields the benchmark reads).
type batchResult struct {
	FilesIngested int64 `json:"files_ingested"`
	Observations  int64 `json:"observations"`
	Bytes         int64 `json:"bytes"`
}

// invoke sends a map batch to f and decodes its answer; a function error (errorType in the answer) is an error.
func (f *function) invoke(ctx context.Context, batch any) (batchResult, error) {
	var r batchResult
	body, err := json.Marshal(batch)
	if err != nil {
		return r, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return r, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return r, err
	}
	var fnErr struct {
		ErrorType string `json:"errorType"`
	}
	if resp.StatusCode != http.StatusOK || (json.Unmarshal(answer, &fnErr) == nil && fnErr.ErrorType != "") {
		return r, fmt.Errorf("function error (HTTP %d): %s", resp.StatusCode, answer)
	}
	return r, json.Unmarshal(answer, &r)
}

// mapBatches are the batches a Distributed Map over prefix sends its children: the ItemReader's listing (ListObjectsV2,
// items as it writes them) in ItemBatcher batches of size.
func mapBatches(ctx context.Context, c *s3.Client, bucket, prefix string, size int) ([]any, error) {
	var items []map[string]any
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			items = append(items, map[string]any{
				"Key": aws.ToString(o.Key), "Etag": aws.ToString(o.ETag), "Size": aws.ToInt64(o.Size),
				"LastModified": aws.ToTime(o.LastModified).Unix(), "StorageClass": "STANDARD",
			})
		}
	}
	var batches []any
	for i := 0; i < len(items); i += size {
		batches = append(batches, map[string]any{"Items": items[i:min(i+size, len(items))], "BatchInput": map[string]any{}})
	}
	return batches, nil
}

// lambdaRun ingests prefix of stack's bucket into the database at dbURL as a Distributed Map of Lambda functions does:
// o.Workers execution environments of the worker binary under the emulator, each with the function's default memory,
// sent the map's batches of o.BatchSize, one at a time each. Its CPU seconds are the workers' ("worker", what Lambda
// bills the duration of) and the emulators' own ("emulator", Lambda's part, not the function's), read from /proc by the
// ids of the processes it started, as is the largest peak RSS of a worker; its log goes to logPath.
func lambdaRun(ctx context.Context, o Options, bootstrap, rie, logPath string, stack *local.Stack, dbURL, prefix string) (*measured, int, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, 0, err
	}
	defer log.Close()
	batches, err := mapBatches(ctx, stack.S3, stack.Bucket, prefix, o.BatchSize)
	if err != nil {
		return nil, 0, err
	}
	free := make(chan *function, o.Workers) // MaxConcurrency: one child per execution environment
	for range o.Workers {
		f, err := startFunction(ctx, rie, bootstrap, workerEnv(stack, dbURL), log)
		if err != nil {
			return nil, 0, err
		}
		defer f.stop()
		free <- f
	}
	fns := make([]*function, 0, o.Workers)
	for range o.Workers {
		f := <-free
		fns = append(fns, f)
		free <- f
	}
	m := &measured{cpu: map[string]float64{}}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Workers)
	start := time.Now()
	for i, b := range batches {
		g.Go(func() error {
			f := <-free
			defer func() { free <- f }()
			r, err := f.invoke(gctx, b)
			if err != nil {
				return fmt.Errorf("batch %d: %w (log: %s)", i, err, logPath)
			}
			mu.Lock()
			m.files, m.obs, m.bytes = m.files+r.FilesIngested, m.obs+r.Observations, m.bytes+r.Bytes
			mu.Unlock()
			return nil
		})
	}
	err = g.Wait()
	m.wall = time.Since(start).Seconds()
	if err != nil {
		return nil, 0, err
	}
	for _, f := range fns {
		w, e, rss, err := f.usage()
		if err != nil {
			return nil, 0, err
		}
		m.cpu["worker"] += w
		m.cpu["emulator"] += e
		m.peakRSS = max(m.peakRSS, rss)
	}
	m.mbs, m.obss = float64(m.bytes)/1e6/m.wall, float64(m.obs)/m.wall
	return m, len(batches), nil
}

// workerEnv is the function's environment: its settings as infra/pipeline sets them (one connection of the read pool)
// for the local stack, and what Lambda sets (memory, timeout, region).
func workerEnv(stack *local.Stack, dbURL string) []string {
	return []string{
		"DATABASE_URL=" + dbURL, "S3_BUCKET=" + stack.Bucket, "S3_ENDPOINT=" + stack.S3Endpoint,
		"AWS_ACCESS_KEY_ID=" + os.Getenv("AWS_ACCESS_KEY_ID"), "AWS_SECRET_ACCESS_KEY=" + os.Getenv("AWS_SECRET_ACCESS_KEY"),
		"AWS_REGION=us-east-1", "DB_READ_MAX_CONNS=1", "LOG_LEVEL=warn",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(lambdaMemoryMB), "AWS_LAMBDA_FUNCTION_TIMEOUT=900",
	}
}
