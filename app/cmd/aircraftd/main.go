// Command aircraftd is the aircraft data platform's service: flight
// statistics from S3 into PostgreSQL, and lane file downloads tracked in
// MongoDB, over one HTTPS API. Configuration comes from the environment (see
// .env.example); `aircraftd gencert` writes a self-signed certificate pair.
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

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/sethvargo/go-retry"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/httpapi"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/postgres"
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
	if len(args) > 1 && args[1] == "gencert" {
		return gencert(args[2:], stdout)
	}
	if len(args) > 1 && (args[1] == "version" || args[1] == "-version" || args[1] == "--version") {
		_, err := fmt.Fprintln(stdout, version)
		return err
	}
	if len(args) > 1 {
		return fmt.Errorf("unknown command %q (commands: gencert, version; no command runs the server)", args[1])
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := newLogger(stdout, cfg.LogLevel)
	log.Info("starting", "version", version)
	if getenv("GOMEMLIMIT") == "" {
		// The service runs on 1 GiB instances beside other processes. Its
		// live heap is bounded by design (batches, a few files in flight);
		// a soft limit makes the collector reclaim garbage before the heap
		// doubles past that, instead of after. GOMEMLIMIT overrides it
		// (the runtime reads it; config holds the default).
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}

	if cfg.HasSecrets() {
		get, err := secretsManager(ctx, cfg.AWSRegion)
		if err != nil {
			return err
		}
		if err := cfg.ResolveSecrets(ctx, get); err != nil {
			return err
		}
	}
	dbURL, err := cfg.PostgresURL()
	if err != nil {
		return err
	}
	db, err := openDB(ctx, log, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()

	if cfg.S3Bucket == "" {
		return errors.New("S3_BUCKET is not set")
	}
	s3c, err := bucket.NewClient(ctx, cfg.AWSRegion, cfg.S3Endpoint)
	if err != nil {
		return err
	}
	flights := bucket.Bucket{Client: s3c, Name: cfg.S3Bucket}

	// Jobs outlive the request that started them but not the process: they
	// stop when the server has drained.
	jobsCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	registry := jobs.NewRegistry(jobsCtx, time.Hour)
	defer func() { stopJobs(); registry.Wait() }()

	ready := []httpapi.Check{
		{Name: "postgres", Check: db.Ping},
		{Name: "s3", Check: flights.Check},
	}
	store, dl, err := openLanes(ctx, log, cfg, s3c)
	if err != nil {
		return err
	}
	var lanes *httpapi.Lanes
	if store != nil {
		defer dl.Close()
		defer store.Close(context.WithoutCancel(ctx))
		ready = append(ready, httpapi.Check{Name: "mongodb", Check: store.Ping})
		source := bucket.Bucket{Client: s3c, Name: cfg.SourceBucket}
		lanes = &httpapi.Lanes{Store: store, Downloader: dl, Indexer: &download.Indexer{Store: store, Bucket: source, Log: log}}
	}

	handler := httpapi.NewServer(httpapi.Deps{
		Log:      log,
		Version:  version,
		APIToken: cfg.APIToken,
		CORS:     cfg.CORSAllowOrigins,
		Stats:    db,
		Ingest:   httpapi.IngestService(&ingest.Service{DB: db, Bucket: flights, Log: log, Workers: cfg.IngestWorkers}),
		Jobs:     registry,
		Ready:    ready,
		Lanes:    lanes,
	})
	return serve.Run(ctx, handler, serve.Options{
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
	})
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// openDB connects and migrates, retrying for a minute: at boot the database
// may come up after the service.
func openDB(ctx context.Context, log *slog.Logger, url string) (*postgres.DB, error) {
	var db *postgres.DB
	b := retry.WithMaxDuration(time.Minute, retry.NewExponential(500*time.Millisecond))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		var err error
		if db, err = postgres.Open(ctx, url); err != nil {
			log.Warn("database not ready, retrying", "error", err)
			return retry.RetryableError(err)
		}
		return nil
	})
	return db, err
}

// openLanes connects the lane file downloads to MongoDB (retrying for a
// minute, like the database) and DOWNLOAD_PATH. Without MONGODB_URL they are
// off: their endpoints answer 503.
func openLanes(ctx context.Context, log *slog.Logger, cfg *config.Config, s3c *s3.Client) (*mongo.Store, *download.Downloader, error) {
	if cfg.MongoURL == "" {
		log.Warn("MONGODB_URL is not set: lane file endpoints answer 503")
		return nil, nil, nil
	}
	var store *mongo.Store
	b := retry.WithMaxDuration(time.Minute, retry.NewExponential(500*time.Millisecond))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		var err error
		store, err = mongo.Open(ctx, mongo.Options{
			URL: cfg.MongoURL, Database: cfg.MongoDBName, Collection: cfg.MongoCollection,
			TLSCAFile: cfg.MongoTLSCAFile, AppName: "aircraftd",
		})
		if err != nil {
			log.Warn("mongodb not ready, retrying", "error", err)
			return retry.RetryableError(err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	dl, err := download.New(download.Config{
		Store: store, S3: s3c, Bucket: cfg.SourceBucket, Root: cfg.DownloadPath,
		Workers: cfg.DownloadWorkers, Durable: cfg.DownloadFsync, Log: log,
	})
	if err != nil {
		_ = store.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return store, dl, nil
}

// secretsManager reads secrets from AWS Secrets Manager with the instance
// role.
func secretsManager(ctx context.Context, region string) (config.SecretGetter, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	return func(ctx context.Context, arn string) (string, error) {
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.SecretString), nil
	}, nil
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
