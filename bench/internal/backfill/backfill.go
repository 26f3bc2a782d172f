// Package backfill is the backfill benchmark (make bench-backfill): the data set of bench-ingest ingested by one POST
// /process-s3-data, then by a backfill of N concurrent workers (BACKFILL_CONCURRENCY) of another aircraftd on a
// database of its own, then as Lambda runs it (N execution environments of the worker binary under the Lambda Runtime
// Interface Emulator, sent a Distributed Map's batches) on a third, all reading the same bucket; MB/s and
// observations/s per worker and in total, CPU seconds of the processes it started (by process id), the database's
// share, and, on paper, what a year of data takes and costs.
package backfill

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/bench/internal/ingest"
	"github.com/aircraftdata/platform/bench/internal/proc"
	"github.com/aircraftdata/platform/bench/internal/service"
	"github.com/aircraftdata/platform/bench/internal/snapshots"
	"github.com/aircraftdata/platform/test/local"
	"github.com/aircraftdata/platform/test/testkit"
)

// Options configure the benchmark.
type Options struct {
	Data        string // folder of generated snapshots (ingest.Generate)
	Workers     int    // BACKFILL_CONCURRENCY of the backfill
	BatchSize   int    // BACKFILL_BATCH_SIZE
	Default     int    // the default BACKFILL_CONCURRENCY, for the year on paper
	DefaultSize int    // the default BACKFILL_BATCH_SIZE, for the year on paper
	Lambda      int    // the map's concurrency on Step Functions, for the year on paper
	Out         io.Writer
}

// A year of readsb-hist: a snapshot every 5 s, ~4.9 MB each (85 GB a day).
const (
	yearFiles = 365 * 17_280
	yearBytes = 365 * 85e9
)

// Cost figures of docs/ingestion.md "What a backfill costs" (the settings' defaults), USD.
const (
	costPerGB      = 230e-6
	costPerFile    = 0.4e-6
	costPerBatch   = 75e-6
	lambdaVCPUSec  = 1.7275 * 0.0000133334 // 1,769 MB of arm64 Lambda (1 vCPU) for a second
	pollBackfillMS = 200
)

type measured struct {
	wall      float64
	dbActive  float64 // seconds the benchmark's database spent executing statements (pg_stat_database.active_time)
	files     int64
	bytes     int64
	obs       int64
	cpu       map[string]float64
	peakRSS   int64 // bytes: the largest VmHWM of a Lambda worker
	mbs, obss float64
}

// dbActiveSeconds is the time the stack's database spent executing statements so far, once the backends have flushed
// their statistics (at most every second when idle).
func dbActiveSeconds(ctx context.Context, stack *local.Stack) (float64, error) {
	time.Sleep(1500 * time.Millisecond)
	conn, err := pgx.Connect(ctx, stack.DatabaseURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var ms float64
	err = conn.QueryRow(ctx, `SELECT active_time FROM pg_stat_database WHERE datname = current_database()`).Scan(&ms)
	return ms / 1000, err
}

// cpuOf is the CPU seconds so far of the benchmark's aircraftd (by its process id, "worker") and of the stack's
// versitygw (by name: the shared stack's, whoever calls it).
func cpuOf(svc *service.Service) map[string]float64 {
	cpu := proc.CPUByName("versitygw")
	cpu["worker"] = proc.CPU(svc.Pid())
	return cpu
}

func (m *measured) finish(cpu, cpuBefore map[string]float64) {
	m.cpu = cpu
	for k, v := range cpuBefore {
		m.cpu[k] -= v
	}
	m.mbs, m.obss = float64(m.bytes)/1e6/m.wall, float64(m.obs)/m.wall
}

// Run uploads the data set, ingests it once with POST /process-s3-data and once with a backfill, and prints both.
// workersFor is how many workers can be busy at once on files in batches of size: at most one per batch. A Distributed
// Map runs no more children than it has batches; more workers would sit idle and thin the per-worker figures (and an
// emulator that is never invoked starts no worker to measure).
func workersFor(files int64, size, workers int) int {
	batches := (files + int64(size) - 1) / int64(size)
	return int(max(1, min(int64(workers), batches)))
}

func Run(ctx context.Context, o Options) error {
	tmp, err := os.MkdirTemp("", "bench-backfill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintln(o.Out, "building aircraftd (the release build), the worker and the Lambda emulator ...")
	bin, err := local.BuildService(testkit.RepoRoot(), filepath.Join(tmp, "bin"))
	if err != nil {
		return err
	}
	bootstrap, rie, err := buildLambda(testkit.RepoRoot(), tmp)
	if err != nil {
		return err
	}
	single, err := local.OpenStack(ctx)
	if err != nil {
		return err
	}
	defer single.Close()
	names, total, err := ingest.Upload(ctx, single, o.Data)
	if err != nil {
		return err
	}
	nfiles, obs := int64(len(names)), int64(len(names))*snapshots.RecordsPerSnapshot
	fmt.Fprintf(o.Out, "data set: %d snapshots, %.0f MB of JSON\n", nfiles, float64(total)/1e6)
	if w := workersFor(nfiles, o.BatchSize, o.Workers); w != o.Workers {
		fmt.Fprintf(o.Out, "%d workers, not %d: the data set makes %d batches of %d\n", w, o.Workers, w, o.BatchSize)
		o.Workers = w
	}
	env := map[string]string{"S3_BUCKET": single.Bucket, "LOG_LEVEL": "warn"}

	// One POST /process-s3-data.
	svc, err := service.Start(ctx, single, bin, filepath.Join(tmp, "single"), env)
	if err != nil {
		return err
	}
	one := &measured{}
	var res struct {
		FilesIngested int64 `json:"files_ingested"`
		Observations  int64 `json:"observations"`
		Bytes         int64 `json:"bytes"`
	}
	dbBefore, err := dbActiveSeconds(ctx, single)
	if err != nil {
		_ = svc.Stop()
		return err
	}
	before, start := cpuOf(svc), time.Now()
	err = svc.Call(ctx, http.MethodPost, "/process-s3-data", nil, &res)
	one.wall = time.Since(start).Seconds()
	one.files, one.obs, one.bytes = res.FilesIngested, res.Observations, res.Bytes
	one.finish(cpuOf(svc), before)
	if err == nil {
		one.dbActive, err = dbActiveSeconds(ctx, single)
		one.dbActive -= dbBefore
	}
	if stopErr := svc.Stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return err
	}

	// A backfill of o.Workers workers, on a database of its own, reading the same bucket.
	other, err := local.OpenStack(ctx)
	if err != nil {
		return err
	}
	defer other.Close()
	env["BACKFILL_CONCURRENCY"], env["BACKFILL_BATCH_SIZE"] = strconv.Itoa(o.Workers), strconv.Itoa(o.BatchSize)
	svc, err = service.Start(ctx, other, bin, filepath.Join(tmp, "backfill"), env)
	if err != nil {
		return err
	}
	defer func(s *service.Service) { _ = s.Stop() }(svc) // on the way out of an error; stopped below otherwise
	bf := &measured{}
	if dbBefore, err = dbActiveSeconds(ctx, other); err != nil {
		return err
	}
	before, start = cpuOf(svc), time.Now()
	got, err := backfill(ctx, svc, "raw/")
	bf.wall = time.Since(start).Seconds()
	bf.files, bf.obs, bf.bytes = got.FilesIngested, got.Observations, got.Bytes
	bf.finish(cpuOf(svc), before)
	if err != nil {
		return err
	}
	if bf.dbActive, err = dbActiveSeconds(ctx, other); err != nil {
		return err
	}
	bf.dbActive -= dbBefore
	if got.State != "succeeded" {
		return fmt.Errorf("backfill %s: %s", got.State, got.Error)
	}
	if err := svc.Stop(); err != nil {
		return err
	}

	// The same backfill as Lambda runs it: the worker binary under the emulator, on a database of its own (migrated by
	// aircraftd, as the stack's is: the worker never migrates), reading the same bucket.
	lam, err := local.OpenStack(ctx)
	if err != nil {
		return err
	}
	defer lam.Close()
	if svc, err = service.Start(ctx, lam, bin, filepath.Join(tmp, "lambda-migrate"), env); err != nil {
		return err
	}
	if err := svc.Stop(); err != nil {
		return err
	}
	if dbBefore, err = dbActiveSeconds(ctx, lam); err != nil {
		return err
	}
	var decode [2]float64 // the pure decode's CPU-s per GB right before and right after the Lambda run
	if decode[0], err = pureDecode(ctx, o.Data); err != nil {
		return err
	}
	gw := proc.CPUByName("versitygw")["versitygw"]
	lm, lambdaBatches, err := lambdaRun(ctx, o, bootstrap, rie, filepath.Join(tmp, "lambda.log"), single, lam.DatabaseURL, "raw/")
	if err != nil {
		return err
	}
	if decode[1], err = pureDecode(ctx, o.Data); err != nil {
		return err
	}
	lm.cpu["versitygw"] = proc.CPUByName("versitygw")["versitygw"] - gw
	if lm.dbActive, err = dbActiveSeconds(ctx, lam); err != nil {
		return err
	}
	lm.dbActive -= dbBefore
	for _, m := range []*measured{one, bf, lm} {
		if m.files != nfiles || m.obs != obs {
			return fmt.Errorf("ingested %d files, %d observations; the data set has %d, %d", m.files, m.obs, nfiles, obs)
		}
	}
	report(o, one, bf, lm, got.BatchesDone, lambdaBatches, decode)
	return nil
}

// pureDecode is the CPU seconds per GB of BenchmarkDecodeAggregate over dir: three decodes of every file from memory,
// by the app's own test binary. Measured right before and right after the Lambda run, their mean is what the workers'
// CPU per GB is compared with: this machine's speed drifts from one minute to the next.
func pureDecode(ctx context.Context, dir string) (float64, error) {
	cmd := exec.CommandContext(ctx, "go", "-C", filepath.Join(testkit.RepoRoot(), "app"), "test", "-run", "^$",
		"-bench", "^BenchmarkDecodeAggregate$", "-benchtime", "3x", "./internal/ingest")
	cmd.Env = append(os.Environ(), "BENCH_SNAPSHOTS="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", cmd, err, out)
	}
	fields := strings.Fields(string(out))
	for i := 1; i < len(fields); i++ {
		if fields[i] == "cpu-s/GB" {
			return strconv.ParseFloat(fields[i-1], 64)
		}
	}
	return 0, fmt.Errorf("%s printed no cpu-s/GB:\n%s", cmd, out)
}

type backfillView struct {
	ID            string `json:"id"`
	State         string `json:"state"`
	Error         string `json:"error"`
	BatchesDone   int64  `json:"batches_done"`
	FilesIngested int64  `json:"files_ingested"`
	Bytes         int64  `json:"bytes"`
	Observations  int64  `json:"observations"`
}

// backfill starts a backfill of prefix and polls it until it ends.
func backfill(ctx context.Context, s *service.Service, prefix string) (backfillView, error) {
	var v backfillView
	if err := s.CallStatus(ctx, http.MethodPost, "/api/v1/backfills", map[string]string{"prefix": prefix}, http.StatusCreated, &v); err != nil {
		return v, err
	}
	for v.State == "running" {
		time.Sleep(pollBackfillMS * time.Millisecond)
		if err := s.Call(ctx, http.MethodGet, "/api/v1/backfills/"+v.ID, nil, &v); err != nil {
			return v, err
		}
	}
	return v, nil
}

func report(o Options, one, bf, lm *measured, batches int64, lambdaBatches int, decode [2]float64) {
	w := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', 0)
	gb := float64(bf.bytes) / 1e9
	decodeCPUGB := (decode[0] + decode[1]) / 2
	fmt.Fprintf(w, "\nmachine\t%s\n", proc.Machine())
	fmt.Fprintf(w, "data\t%d snapshots, %.0f MB JSON, %d observations\n", bf.files, float64(bf.bytes)/1e6, bf.obs)
	fmt.Fprintf(w, "pure decode\t%.2f CPU-s per GB (BenchmarkDecodeAggregate, right before the Lambda run %.2f, after it %.2f)\n",
		decodeCPUGB, decode[0], decode[1])
	line := func(name, worker string, m *measured, workers int) {
		fmt.Fprintf(w, "%s\t%.0f MB/s, %.0f observations/s in total; %.0f MB/s, %.0f observations/s per worker (%.1f s)\n",
			name, m.mbs, m.obss, m.mbs/float64(workers), m.obss/float64(workers), m.wall)
		fmt.Fprintf(w, "  CPU seconds\t%s %.1f (%.2f per GB), versitygw %.1f (of %.1f available)\n",
			worker, m.cpu["worker"], m.cpu["worker"]/gb, m.cpu["versitygw"], m.wall*float64(runtime.NumCPU()))
		fmt.Fprintf(w, "  the database's share\t%.1f s executing statements: %.0f%% of the workers' time\n",
			m.dbActive, 100*m.dbActive/(m.wall*float64(workers)))
		ratio := m.cpu["worker"] / gb / decodeCPUGB
		verdict := "within"
		if ratio > 1.25 {
			verdict = "NOT within"
		}
		fmt.Fprintf(w, "  CPU-s per GB / pure decode's\t%.2f / %.2f = %.2f× (%s the 1.25× target)\n",
			m.cpu["worker"]/gb, decodeCPUGB, ratio, verdict)
	}
	line("single POST /process-s3-data", "aircraftd", one, 1)
	line(fmt.Sprintf("backfill in aircraftd, %d workers, batches of %d", o.Workers, o.BatchSize), "aircraftd", bf, o.Workers)
	line(fmt.Sprintf("backfill on Lambda (emulator), %d functions of %d MB, batches of %d", o.Workers, lambdaMemoryMB, o.BatchSize),
		"workers", lm, o.Workers)
	fmt.Fprintf(w, "  the emulators' own CPU seconds\t%.1f (not the function's: Lambda's runtime API, not billed)\n", lm.cpu["emulator"])
	fmt.Fprintf(w, "  a function's peak RSS\t%.0f MiB (VmHWM; its memory is %d MB, its Go soft memory limit 3/4 of it)\n",
		float64(lm.peakRSS)/(1<<20), lambdaMemoryMB)
	workerCPUGB := lm.cpu["worker"] / gb
	hours := func(m *measured, workers int) float64 {
		return yearBytes / (m.mbs / float64(o.Workers) * 1e6 * float64(workers)) / 3600
	}
	fmt.Fprintf(w, "a year of data on paper\t%.0f TB, %d files: %.0f h in-process at BACKFILL_CONCURRENCY=%d, %.1f h on Lambda at MaxConcurrency %d (if each worker does as one here)\n",
		yearBytes/1e12, yearFiles, hours(bf, o.Default), o.Default, hours(lm, o.Lambda), o.Lambda)
	yearBatches := float64(yearFiles) / float64(o.DefaultSize)
	estimate := yearBytes/1e9*costPerGB + yearFiles*costPerFile + yearBatches*costPerBatch
	measuredLambda := yearBytes/1e9*workerCPUGB*lambdaVCPUSec + yearFiles*costPerFile + yearBatches*costPerBatch
	fmt.Fprintf(w, "what it costs on Step Functions + Lambda\t$%.2f by the settings' estimate; $%.2f from the Lambda workers' CPU-s per GB at $%.6f per vCPU-second (batches of %d)\n",
		estimate, measuredLambda, lambdaVCPUSec, o.DefaultSize)
	fmt.Fprintf(w, "batches\t%d in aircraftd, %d on Lambda\n", batches, lambdaBatches)
	_ = w.Flush()
}
