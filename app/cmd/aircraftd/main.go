// Command aircraftd is the aircraft data platform's service: flight statistics from S3 into PostgreSQL, and lane file
// downloads tracked in MongoDB, over one HTTPS API. Configuration comes from the environment (see .env.example);
// `aircraftd gencert` writes a self-signed certificate pair.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/sethvargo/go-retry"
	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/aircraftdata/platform/app/internal/backfill"
	"github.com/aircraftdata/platform/app/internal/backfill/inprocess"
	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/httpapi"
	"github.com/aircraftdata/platform/app/internal/httpapi/middleware"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/metrics"
	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/postgres/backfillstore"
	"github.com/aircraftdata/platform/app/internal/postgres/jobstore"
	"github.com/aircraftdata/platform/app/internal/ready"
	"github.com/aircraftdata/platform/app/internal/serve"
	"github.com/aircraftdata/platform/app/internal/tlscert"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "aircraftd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 1 {
		return command(args[1], args[2:], stdout)
	}
	cfg, log, tokens, err := configure(ctx, getenv, stdout)
	if err != nil {
		return err
	}
	m := metrics.New(version)
	st, err := open(ctx, log, cfg, m)
	if err != nil {
		return err
	}
	registry := jobs.NewRegistry(log, jobs.Limits{
		MaxRunning: cfg.JobsMaxRunning, KeepFinished: cfg.JobsKeep, KeepFor: cfg.JobsKeepFor,
	})
	registry.Observe(m)
	m.SetJobs(registry)
	metricsLn, err := listenMetrics(cfg, log, m)
	if err != nil {
		st.close(log)
		return err
	}
	// Jobs are kept in PostgreSQL too: any instance answers for any job.
	registry.Share(jobstore.New(st.db), jobs.InstanceName(), cfg.JobsLease)
	// Readiness is checked in the background, first before serving.
	checker := ready.New(log, cfg.ReadyRefresh, st.checks()...)
	checker.Refresh(ctx)
	go checker.Run(ctx)
	ingestion := &ingest.Service{DB: st.db, Bucket: st.flights, Log: log, Workers: cfg.IngestWorkers, Limits: cfg.IngestLimits(), Metrics: m}
	reads := *ingestion
	reads.DB = st.db.Reads()
	backfillCtx, stopBackfills := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackfills()
	backfills, local, err := backfills(backfillCtx, cfg, log, st, ingestion)
	if err != nil {
		registry.Stop(err)
		closeMetrics(log, metricsLn)
		st.close(log)
		return err
	}
	handler := httpapi.NewServer(httpapi.Deps{
		Log:            log,
		Version:        version,
		APITokens:      tokens,
		ReadTokens:     readTokens(cfg, tokens),
		CORS:           cfg.CORSAllowOrigins,
		TrustedProxies: cfg.TrustedProxies,
		Limits:         readLimits(cfg),
		Stats:          st.db.Reads(),
		Ingest:         httpapi.IngestService(ingestion, &reads),
		Jobs:           registry,
		Ready:          checker,
		Lanes:          st.lanes(log),
		Metrics:        m,
		Backfills:      backfills,
	})

	// Shutdown, in this order: (1) stop accepting, (2) requests in flight finish within the grace period, then their
	// contexts are cancelled (both in serve.Run, which returns when no handler runs any more), (3) jobs are cancelled
	// with the cause "shutdown" and drained, their ends saved (retried for up to JOBS_LEASE_SECONDS), (4) the metrics
	// listener stops (it showed the drain until then), (5) the downloads root, MongoDB and Postgres are closed.
	err = serve.Run(ctx, handler, serveOptions(cfg, log))
	log.Info("shutting down: stopping jobs")
	registry.Stop(serve.ErrShutdown)
	closeMetrics(log, metricsLn)
	log.Info("shutting down: stopping backfills (their batches under way are cancelled, none committed in part)")
	stopBackfills()
	local.Wait()
	log.Info("shutting down: closing the downloads root, mongodb, postgres")
	st.close(log)
	log.Info("stopped")
	return err
}

// configure loads the settings, makes the logger, sets the memory limit, resolves the secrets and reads the API tokens.
func configure(ctx context.Context, getenv func(string) string, stdout io.Writer) (*config.Config, *slog.Logger, []string, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("configuration: %w", err)
	}
	log := newLogger(stdout, cfg.LogLevel)
	log.Info("starting", "version", version)
	if getenv("GOMEMLIMIT") == "" {
		// The service runs on 1 GiB instances beside other processes. Its live heap is bounded by design (batches, a
		// few files in flight); a soft limit makes the collector reclaim garbage before the heap doubles past that,
		// instead of after. GOMEMLIMIT overrides it (the runtime reads it; config holds the default).
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}

	if cfg.HasSecrets() {
		get, err := config.SecretsManager(ctx, cfg.AWSRegion)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := cfg.ResolveSecrets(ctx, get); err != nil {
			return nil, nil, nil, err
		}
	}
	tokens, err := authTokens(cfg, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, log, tokens, nil
}

// command runs one of aircraftd's commands other than serving.
func command(name string, args []string, stdout io.Writer) error {
	switch name {
	case "gencert":
		return gencert(args, stdout)
	case "version", "-version", "--version":
		_, err := fmt.Fprintln(stdout, version)
		return err
	}
	return fmt.Errorf("unknown command %q (commands: gencert, version; no command runs the server)", name)
}

// readLimits are what bounds the API's reads (the READ_* and RATE_LIMIT_* settings).
func readLimits(cfg *config.Config) httpapi.Limits {
	return httpapi.Limits{
		PerSecond: cfg.RateLimit, Burst: cfg.RateLimitBurst, Clients: cfg.RateLimitClients,
		InFlight: cfg.ReadMaxInFlight, PageMax: cfg.ReadPageMax, ReadTimeout: cfg.ReadTimeout,
	}
}

// serveOptions are how the API is served (HTTP_ADDR, REDIRECT_ADDR, the TLS_* and ACME_* settings,
// SHUTDOWN_GRACE_SECONDS).
func serveOptions(cfg *config.Config, log *slog.Logger) serve.Options {
	return serve.Options{
		Addr:         cfg.HTTPAddr,
		RedirectAddr: cfg.RedirectAddr,
		CertFile:     cfg.TLSCertFile,
		KeyFile:      cfg.TLSKeyFile,
		ACMEDomain:   cfg.ACMEDomain,
		ACMEEmail:    cfg.ACMEEmail,
		ACMECacheDir: cfg.ACMECacheDir,
		PlainHTTP:    cfg.TLSDisable,
		Grace:        cfg.ShutdownGrace,
		Log:          log,
	}
}

// listenMetrics binds the metrics' listener of their own (METRICS_ADDR; config refused one beyond loopback without
// METRICS_TOKEN), before the API's: a start that cannot serve them fails. None when METRICS_ADDR=off.
func listenMetrics(cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (*metrics.Listener, error) {
	if cfg.MetricsAddr == "off" {
		return nil, nil
	}
	ln, err := m.Listen(cfg.MetricsAddr, cfg.MetricsToken, log)
	if err != nil {
		return nil, fmt.Errorf("metrics listener (METRICS_ADDR): %w", err)
	}
	return ln, nil
}

// closeMetrics stops the metrics listener, if there is one, within 5 s.
func closeMetrics(log *slog.Logger, ln *metrics.Listener) {
	if ln == nil {
		return
	}
	log.Info("shutting down: stopping the metrics listener")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ln.Close(ctx); err != nil {
		log.Warn("stopping the metrics listener", "error", err)
	}
}

// backfills returns the backfill manager: on the Step Functions state machine BACKFILL_STATE_MACHINE_ARN when set, else
// in this process (local, whose backfills end when ctx does: Wait waits for them; a local runner is returned either
// way).
func backfills(ctx context.Context, cfg *config.Config, log *slog.Logger, st *stores, ingestion *ingest.Service) (*backfill.Manager, *inprocess.Runner, error) {
	limits := backfill.Limits{
		MaxRunning: cfg.BackfillMaxRunning, BatchSize: cfg.BackfillBatchSize, Concurrency: cfg.BackfillConcurrency,
		Retries: cfg.BackfillRetries, Backoff: cfg.BackfillRetryWait, ToleratedFailurePercent: cfg.BackfillToleratedPercent,
		Lease: cfg.JobsLease,
	}
	if err := limits.Check(); err != nil {
		return nil, nil, err
	}
	store := backfillstore.New(st.db)
	local := inprocess.New(ctx, &inprocess.Runner{Store: store, Ingest: ingestion, Bucket: st.flights, Limits: limits, Log: log})
	m := &backfill.Manager{Store: store, Runner: local, Bucket: st.flights.Name, Limits: limits, Log: log, Cost: backfill.Cost{
		PerGB: float64(cfg.BackfillCostPerGB) / 1e6, PerFile: float64(cfg.BackfillCostPer1000Files) / 1e9,
		PerBatch: float64(cfg.BackfillCostPerBatch) / 1e6,
	}}
	if cfg.BackfillStateMachineARN != "" {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.AWSRegion))
		if err != nil {
			return nil, nil, fmt.Errorf("aws config: %w", err)
		}
		m.Runner = &backfill.StepFunctions{Client: sfn.NewFromConfig(awsCfg), StateMachine: cfg.BackfillStateMachineARN,
			Store: store, Limits: limits}
		log.Info("backfills: on Step Functions", "state_machine", cfg.BackfillStateMachineARN)
	}
	return m, local, nil
}

// authTokens returns the bearer tokens every POST needs (cfg.APITokens). None refuses to start unless AUTH_DISABLE=true
// says so, and then every POST is open; the log says which.
func authTokens(cfg *config.Config, log *slog.Logger) ([]string, error) {
	tokens := cfg.APITokens()
	switch {
	case cfg.AuthDisable:
		log.Warn("auth: off (AUTH_DISABLE=true): every POST and listing is open", "tokens_ignored", len(tokens))
		return nil, nil
	case len(tokens) == 0:
		return nil, errors.New("auth: API_TOKEN (or the secret API_TOKEN_SECRET_ARN names) is empty: set a token, or AUTH_DISABLE=true to run without auth")
	}
	log.Info("auth: bearer token required on every POST and listing", "tokens", len(tokens), "read_tokens", len(cfg.ReadTokens()))
	return tokens, nil
}

// readTokens are the tokens of READ_TOKEN, accepted besides API_TOKEN on the listings that reveal keys and paths; none
// when auth is off.
func readTokens(cfg *config.Config, apiTokens []string) []string {
	if len(apiTokens) == 0 {
		return nil
	}
	return cfg.ReadTokens()
}

// stores are the service's connections to its dependencies.
type stores struct {
	db      *postgres.DB
	flights bucket.Bucket
	source  bucket.Bucket
	mongo   *mongo.Store         // nil without MONGODB_URL
	dl      *download.Downloader // nil without MONGODB_URL
}

// open connects to every dependency; on failure it closes what it opened.
func open(ctx context.Context, log *slog.Logger, cfg *config.Config, m *metrics.Metrics) (_ *stores, err error) {
	st := &stores{}
	defer func() {
		if err != nil {
			st.close(log)
		}
	}()
	// Refused before anything is opened: a URI that would send credentials in clear text beyond this host.
	if err := cfg.CheckMongoTLS(); err != nil {
		return nil, err
	}
	dbURL, err := cfg.PostgresURL()
	if err != nil {
		return nil, err
	}
	readPool := postgres.ReadPool{MaxConns: cfg.DBReadMaxConns, Timeout: cfg.ReadTimeout}
	if st.db, err = openDB(ctx, log, dbURL, readPool); err != nil {
		return nil, err
	}
	// The ingestion worker's role (DB_WORKER_USER), made as the master too: no password, IAM database auth on RDS.
	if cfg.DBWorkerUser != "" {
		if cfg.DBWorkerUser == cfg.DBApp.User {
			return nil, fmt.Errorf("DB_WORKER_USER %q is the app role's user: give the worker a role of its own", cfg.DBWorkerUser)
		}
		iam, err := st.db.EnsureWorkerRole(ctx, cfg.DBWorkerUser)
		if err != nil {
			return nil, err
		}
		if iam {
			log.Info("postgres: the worker role logs in with IAM database auth", "role", cfg.DBWorkerUser)
		} else {
			log.Warn("postgres: IAM database auth is not available here (no rds_iam role): the worker role has no way to log in but those given by hand", "role", cfg.DBWorkerUser)
		}
	}
	// With a role of its own (DB_APP_SECRET_ARN), the service migrates as the master, makes that role (no DDL), then
	// serves as it only.
	appURL, err := cfg.PostgresAppURL()
	if err != nil {
		return nil, err
	}
	if appURL != "" {
		if err := st.db.EnsureAppRole(ctx, cfg.DBApp.User, cfg.DBApp.Password); err != nil {
			return nil, err
		}
		st.db.Close()
		if st.db, err = openDB(ctx, log, appURL, readPool); err != nil {
			return nil, err
		}
		log.Info("postgres: serving as the app role", "role", cfg.DBApp.User)
	}
	m.PostgresPools(st.db.Pools())
	if cfg.S3Bucket == "" {
		return nil, errors.New("S3_BUCKET is not set")
	}
	s3c, err := bucket.NewClient(ctx, cfg.AWSRegion, cfg.S3Endpoint)
	if err != nil {
		return nil, err
	}
	st.flights = bucket.Bucket{Client: s3c, Name: cfg.S3Bucket, Stall: cfg.S3Stall}
	st.source = bucket.Bucket{Client: s3c, Name: cfg.SourceBucket}
	if cfg.MongoURL == "" {
		log.Warn("MONGODB_URL is not set: lane file endpoints answer 503")
		return st, nil
	}
	if st.mongo, err = openMongo(ctx, log, cfg, cfg.MongoURL, m.MongoPools().Monitor); err != nil {
		return nil, err
	}
	// Likewise with a user of its own (MONGODB_APP_SECRET_ARN): made as the master, then the only one used.
	if appURL, err := cfg.MongoAppURL(); err != nil {
		return nil, err
	} else if appURL != "" {
		if err := st.mongo.EnsureAppUser(ctx, cfg.MongoApp.User, cfg.MongoApp.Password); err != nil {
			return nil, err
		}
		closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := st.mongo.Close(closeCtx)
		cancel()
		if st.mongo = nil; err != nil {
			return nil, fmt.Errorf("mongodb: closing the master's connections: %w", err)
		}
		if st.mongo, err = openMongo(ctx, log, cfg, appURL, m.MongoPools().Monitor); err != nil {
			return nil, err
		}
		log.Info("mongodb: serving as the app user", "user", cfg.MongoApp.User)
	}
	st.dl, err = download.New(download.Config{
		Records: st.mongo, Claims: st.mongo, S3: s3c, Bucket: cfg.SourceBucket, Root: cfg.DownloadPath,
		Workers: cfg.DownloadWorkers, Lease: cfg.DownloadClaimLease, Durable: cfg.DownloadFsync, Log: log,
		Wait: cfg.DownloadWait, Stall: cfg.DownloadStall, Reserve: cfg.DownloadReserve, MaxObject: cfg.DownloadMaxObject,
		Metrics: m,
	})
	return st, err
}

// checks are what readiness reports on.
func (st *stores) checks() []ready.Check {
	c := []ready.Check{{Name: "postgres", Check: st.db.Ping}, {Name: "s3", Check: st.flights.Check}}
	if st.mongo != nil {
		c = append(c, ready.Check{Name: "mongodb", Check: st.mongo.Ping})
	}
	return c
}

// lanes are the lane file endpoints' dependencies; nil without MongoDB.
func (st *stores) lanes(log *slog.Logger) *httpapi.Lanes {
	if st.dl == nil {
		return nil
	}
	return &httpapi.Lanes{Store: st.mongo, Downloader: httpapi.Downloads(st.dl), Indexer: &download.Indexer{Store: st.mongo, Bucket: st.source, Log: log}}
}

// close releases the downloads root, then MongoDB, then Postgres. The S3 client holds nothing to release but idle
// connections.
func (st *stores) close(log *slog.Logger) {
	if st.dl != nil {
		if err := st.dl.Close(); err != nil {
			log.Warn("closing the downloads root", "error", err)
		}
	}
	if st.mongo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := st.mongo.Close(ctx); err != nil {
			log.Warn("closing mongodb", "error", err)
		}
	}
	if st.db != nil {
		st.db.Close()
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(middleware.WithRequestIDs(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})))
}

// openDB connects and migrates, retrying for a minute (retrying).
func openDB(ctx context.Context, log *slog.Logger, url string, reads postgres.ReadPool) (*postgres.DB, error) {
	return retrying(ctx, log, "database", func(ctx context.Context) (*postgres.DB, error) {
		return postgres.Open(ctx, url, reads)
	})
}

// openMongo connects to MongoDB, retrying for a minute (retrying).
func openMongo(ctx context.Context, log *slog.Logger, cfg *config.Config, url string, monitor func(string, uint64) *event.PoolMonitor) (*mongo.Store, error) {
	return retrying(ctx, log, "mongodb", func(ctx context.Context) (*mongo.Store, error) {
		return mongo.Open(ctx, mongo.Options{
			URL: url, Database: cfg.MongoDBName, Collection: cfg.MongoCollection,
			TLSCAFile: cfg.MongoTLSCAFile, AppName: "aircraftd", ReadConns: cfg.MongoReadMaxConns, Monitor: monitor,
		})
	})
}

// retrying calls open until it succeeds, for up to a minute: at boot a dependency may come up after the service.
func retrying[T any](ctx context.Context, log *slog.Logger, what string, open func(context.Context) (T, error)) (T, error) {
	var v T
	b := retry.WithMaxDuration(time.Minute, retry.NewExponential(500*time.Millisecond))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		got, err := open(ctx)
		if err != nil {
			log.Warn(what+" not ready, retrying", "error", err)
			return retry.RetryableError(err)
		}
		v = got
		return nil
	})
	return v, err
}

func gencert(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gencert", flag.ContinueOnError)
	cert := fs.String("cert", "cert.pem", "certificate file to write (0644)")
	key := fs.String("key", "key.pem", "private key file to write (0600)")
	hosts := fs.String("hosts", "localhost,127.0.0.1", "comma-separated DNS names and IP addresses")
	if err := fs.Parse(args); err != nil {
		return err
	}
	wrote, err := tlscert.WriteFiles(*cert, *key, strings.Split(*hosts, ","))
	if err != nil {
		return err
	}
	if wrote {
		fmt.Fprintf(stdout, "wrote %s and %s for %s\n", *cert, *key, *hosts)
	} else {
		fmt.Fprintf(stdout, "%s and %s exist: left as they are\n", *cert, *key)
	}
	return nil
}
