// Command ingest-worker is the ingestion worker as an AWS Lambda function (provided.al2023, built as bootstrap): it
// ingests the batches of a Step Functions Distributed Map over the bucket's listing, and the new objects that S3
// notifies through SQS, exactly once (internal/worker). Configuration comes from the environment, the settings of
// aircraftd (DATABASE_URL or DB_*, S3_BUCKET, INGEST_*), and DB_IAM_AUTH=true connects with IAM database auth tokens;
// the function's timeout bounds each invocation.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/worker"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx := context.Background()
	h, closeDB, err := setup(ctx, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest-worker:", err)
		os.Exit(1)
	}
	lambda.StartWithOptions(h.Invoke, lambda.WithContext(ctx), lambda.WithEnableSIGTERM(closeDB))
}

// setup reads the configuration and connects to the database and the bucket, once per execution environment
// (invocations reuse them).
func setup(ctx context.Context, getenv func(string) string) (*worker.Handler, func(), error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level(cfg.LogLevel)}))
	log.Info("starting", "version", version)
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit(cfg.MemoryLimit, getenv))
	}
	if gogc, ok := lambdaGCPercent(getenv); ok {
		debug.SetGCPercent(gogc)
	}
	if cfg.HasSecrets() {
		return nil, nil, errors.New("the worker reads no secret (DB_SECRET_ARN, …): give it DATABASE_URL or DB_*")
	}
	if cfg.S3Bucket == "" {
		return nil, nil, errors.New("S3_BUCKET is not set")
	}
	dbURL, err := cfg.PostgresURL()
	if err != nil {
		return nil, nil, err
	}
	var password postgres.Password
	if cfg.DBIAMAuth {
		if password, err = iamAuth(ctx, cfg); err != nil {
			return nil, nil, err
		}
		endpoint, user := cfg.DBIAMAuthEndpoint()
		log.Info("postgres: IAM database auth", "endpoint", endpoint, "user", user)
	}
	db, err := postgres.OpenMigrated(ctx, dbURL, postgres.ReadPool{MaxConns: cfg.DBReadMaxConns, Timeout: cfg.ReadTimeout}, password)
	if err != nil {
		return nil, nil, err
	}
	s3c, err := bucket.NewClient(ctx, cfg.AWSRegion, cfg.S3Endpoint)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	svc := &ingest.Service{
		DB: db, Bucket: bucket.Bucket{Client: s3c, Name: cfg.S3Bucket, Stall: cfg.S3Stall}, Log: log,
		Workers: cfg.IngestWorkers, Limits: cfg.IngestLimits(),
	}
	return &worker.Handler{Ingest: svc, Bucket: cfg.S3Bucket, Log: log}, db.Close, nil
}

// memoryLimit is the worker's soft memory limit when GOMEMLIMIT is unset: three quarters of the function's memory
// (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB, set by Lambda), the rest left to the runtime's own and the stacks; outside
// Lambda, def (GOMEMLIMIT's default, made for aircraftd's 1 GiB instance). Lambda bills time: under aircraftd's 100 MiB
// a 1,769 MB function would spend about a tenth of its CPU collecting garbage it has room for.
func memoryLimit(def int64, getenv func(string) string) int64 {
	mb, ok := functionMemory(getenv)
	if !ok {
		return def
	}
	return mb << 20 / 4 * 3
}

// lambdaGOGC is the worker's GOGC under Lambda: the collector runs when the heap reaches five times what is live, not
// twice (Go's default of 100). An execution environment runs one invocation at a time and its live heap is small: the
// batch's aggregate, one decoded file per ingest worker and a commit's rows, about 20 MB for readsb-hist snapshots. At
// 400 the heap peaks near 100 MB, its pages are reused from one collection to the next, and the collector runs a
// quarter as often as at 100. The two ends both cost more (README, make bench-backfill): at 100 the collector marks
// every few files; off (collecting only at the memory limit) touches up to the whole limit of fresh memory first, and
// on a virtual machine the page faults of that first touch cost more than the collections they save (+60% CPU per GB
// here for the first GB, +30% over 3 GB). At the caps the live heap is 184-345 MB and the memory limit, not GOGC, sets
// when the collector runs.
const lambdaGOGC = 400

// lambdaGCPercent is the GOGC to set: lambdaGOGC under Lambda, unless GOGC or GOMEMLIMIT is set; none outside Lambda.
func lambdaGCPercent(getenv func(string) string) (int, bool) {
	_, ok := functionMemory(getenv)
	return lambdaGOGC, ok && getenv("GOGC") == "" && getenv("GOMEMLIMIT") == ""
}

// functionMemory is the function's memory in MB (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, set by Lambda), and whether it runs
// under Lambda.
func functionMemory(getenv func(string) string) (int64, bool) {
	mb, err := strconv.ParseInt(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64)
	return mb, err == nil && mb > 0
}

// iamAuth makes the password of each new connection an IAM database auth token of the function's role, for DB_USER at
// DB_HOST:DB_PORT (DB_IAM_AUTH): no secret to keep, no Secrets Manager endpoint to reach.
func iamAuth(ctx context.Context, cfg *config.Config) (postgres.Password, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.AWSRegion))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	endpoint, user := cfg.DBIAMAuthEndpoint()
	return func(ctx context.Context) (string, error) {
		return auth.BuildAuthToken(ctx, endpoint, awsCfg.Region, user, awsCfg.Credentials)
	}, nil
}

func level(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
