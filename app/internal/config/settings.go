package config

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Setting is one environment variable of the service.
type Setting struct {
	Name    string
	Group   string // section of .env.example
	Default string // used when the variable is unset or blank; "" for none
	Example string // a value to show where there is no default
	Local   bool   // a local run sets it: .env.example lists it uncommented
	Doc     string // what it means, one line

	set func(string) error // parses a value into the Config; nil: read by the runtime or the AWS SDK
}

// Settings is the table of every setting, in the order of .env.example.
func Settings() []Setting { return new(Config).settings() }

// settings is the table, bound to c: Load fills c through it.
//
// To add a setting: a field in Config and one line here, in its group (then `go test ./internal/config -update`
// rewrites .env.example and docs/CONTRACT.md).
func (c *Config) settings() []Setting {
	return slices.Concat(
		group("HTTP",
			local(text("HTTP_ADDR", ":8443", &c.HTTPAddr, "main listener (HTTPS unless TLS_DISABLE=true)")),
			example(text("REDIRECT_ADDR", "", &c.RedirectAddr, "plain listener: ACME http-01 challenges + redirect to https"), ":80"),
			example(text("TLS_CERT_FILE", "", &c.TLSCertFile, "certificate of HTTPS, with TLS_KEY_FILE; unset: self-signed made at start"), "/etc/aircraft/tls/cert.pem"),
			example(text("TLS_KEY_FILE", "", &c.TLSKeyFile, "private key of TLS_CERT_FILE"), "/etc/aircraft/tls/key.pem"),
			boolean("TLS_DISABLE", false, &c.TLSDisable, "true: plain HTTP on HTTP_ADDR (must be explicit)"),
			example(text("ACME_DOMAIN", "", &c.ACMEDomain, "trusted certificate by ACME for this domain (needs REDIRECT_ADDR=:80)"), "api.example.com"),
			example(text("ACME_EMAIL", "", &c.ACMEEmail, "contact address for the ACME account"), "ops@example.com"),
			text("ACME_CACHE_DIR", "acme-cache", &c.ACMECacheDir, "where ACME keys and certificates are kept"),
			example(text("API_TOKEN", "", &c.APIToken, "bearer token(s) for every POST, comma or space separated (\"new,old\" during a rotation); empty: refuses to start"), "change-me"),
			text("API_TOKEN_SECRET_ARN", "", &c.APITokenSecretARN, "or read API_TOKEN from Secrets Manager (plain text, same list form)"),
			boolean("AUTH_DISABLE", false, &c.AuthDisable, "true: every POST open, no token needed (must be explicit; the start log says so)"),
			example(text("READ_TOKEN", "", &c.ReadToken, "bearer token(s) for the GETs that list S3 keys and paths (/api/v1/files, /api/v1/ingestion/failed), same list form; API_TOKEN works there too"), "change-me-too"),
			positive("RATE_LIMIT_PER_SECOND", 20, &c.RateLimit, "requests per second per client address (IPv6: per /64) on every endpoint but POSTs, health and ready; more answer 429 with Retry-After"),
			positive("RATE_LIMIT_BURST", 40, &c.RateLimitBurst, "requests a client address may send at once before RATE_LIMIT_PER_SECOND applies"),
			positive("RATE_LIMIT_CLIENTS", 10_000, &c.RateLimitClients, "client addresses the rate limiter remembers (the least recently seen is forgotten first)"),
			positive("READ_MAX_IN_FLIGHT", 64, &c.ReadMaxInFlight, "requests served at once, but POSTs, health and ready; more answer 503 with Retry-After"),
			positive("READ_PAGE_MAX", 1000, &c.ReadPageMax, "most items of one page of a list (a larger limit is cut to it)"),
			seconds("READ_TIMEOUT_SECONDS", 5*time.Second, &c.ReadTimeout, "time one GET may take (its database statements included); over it: 503"),
			seconds("READY_REFRESH_SECONDS", 5*time.Second, &c.ReadyRefresh, "/api/v1/ready answers the last check of the dependencies, made this often in the background"),
			example(list("TRUSTED_PROXIES", &c.TrustedProxies, "IPs or CIDRs whose X-Forwarded-For sets the client address; unset: none"), "10.0.0.0/16"),
			example(list("CORS_ALLOW_ORIGINS", &c.CORSAllowOrigins, "origins allowed to call the API from a browser, comma-separated"), "https://console.example.com,https://ops.example.com"),
			text("METRICS_ADDR", "127.0.0.1:9464", &c.MetricsAddr, "Prometheus metrics at /metrics, on a listener of their own (plain HTTP); off: none. Beyond loopback it needs METRICS_TOKEN (else the service refuses to start)"),
			example(text("METRICS_TOKEN", "", &c.MetricsToken, "bearer token every scrape of /metrics must send; required when METRICS_ADDR is not a loopback address"), "change-me-metrics"),
			seconds("SHUTDOWN_GRACE_SECONDS", 20*time.Second, &c.ShutdownGrace, "at shutdown, requests in flight may finish this long, then their contexts are cancelled"),
			positive("JOBS_MAX_RUNNING", 32, &c.JobsMaxRunning, "background jobs (?async=true) and synchronous downloads running at once; more answer 429 with Retry-After"),
			positive("JOBS_KEEP", 100, &c.JobsKeep, "finished jobs kept for polling (the newest)"),
			minutes("JOBS_KEEP_MINUTES", time.Hour, &c.JobsKeepFor, "how long a finished job is kept at most"),
			seconds("JOBS_LEASE_SECONDS", 30*time.Second, &c.JobsLease, "jobs are kept in PostgreSQL for every instance; a running job whose instance has not renewed it this long (by the database's clock) is answered failed: instance lost until its real end is saved; at shutdown a job's end is retried this long at most"),
			local(text("LOG_LEVEL", "info", &c.LogLevel, "debug, info, warn or error")),
			bytes("GOMEMLIMIT", 100<<20, &c.MemoryLimit, "Go soft memory limit (read by the Go runtime; aircraftd sets the default when unset)"),
		),
		group("PostgreSQL: DATABASE_URL, or the DB_* parts (seed names), or DB_SECRET_ARN",
			local(example(text("DATABASE_URL", "", &c.DatabaseURL, "connection URL; wins over DB_* unless DB_SECRET_ARN is set"),
				"postgres://aircraft:aircraft@127.0.0.1:5432/aircraft_db?sslmode=disable")),
			example(text("DB_HOST", "", &c.db.host, "database host"), "127.0.0.1"),
			text("DB_PORT", "5432", &c.db.port, "database port"),
			example(text("DB_USER", "", &c.db.user, "database user"), "aircraft"),
			example(text("DB_PASSWORD", "", &c.db.password, "database password"), "aircraft"),
			text("DB_NAME", "aircraft_db", &c.db.name, "database name"),
			text("DB_SSLMODE", "prefer", &c.db.sslmode, "libpq sslmode: verify-full with DB_SSLROOTCERT for RDS"),
			example(text("DB_SSLROOTCERT", "", &c.db.sslrootcert, "CA bundle that signs the database's certificate"), "/etc/aircraft/rds-ca.pem"),
			boolean("DB_IAM_AUTH", false, &c.DBIAMAuth, "true: connect as DB_USER with an IAM database auth token (the role's, made for each connection) instead of a password; needs DB_HOST, DB_USER and DB_SSLMODE=verify-full (the ingestion worker)"),
			text("DB_SECRET_ARN", "", &c.DBSecretARN, "RDS-generated secret {username,password,host,port,dbname}; fills DB_*"),
			text("DB_APP_SECRET_ARN", "", &c.DBAppSecretARN, "secret {username,password} of the service's own role: connected as the master (above), aircraftd migrates, creates or updates that role (DML on the tables, no DDL), then serves as it"),
			text("DB_WORKER_USER", "", &c.DBWorkerUser, "login role of the ingestion worker (DB_USER of its DB_IAM_AUTH): connected as the master (above), aircraftd creates it with no password, grants it rds_iam where that role exists (RDS) and the app role's privileges (DML on the tables, no DDL); unset: none"),
			positive("DB_READ_MAX_CONNS", 2, &c.DBReadMaxConns, "connections of the pool that serves the API's reads, apart from the work's (ingestion, jobs, claims); statements on it end after READ_TIMEOUT_SECONDS"),
		),
		group("S3",
			local(text("AWS_REGION", "us-east-1", &c.AWSRegion, "AWS region of the buckets and secrets")),
			local(example(text("S3_BUCKET", "", &c.S3Bucket, "bucket of the flight data files (required)"), "aircraft-data")),
			example(text("SOURCE_BUCKET", "", &c.SourceBucket, "bucket of the lane files; unset: S3_BUCKET"), "aircraft-data"),
			example(text("S3_ENDPOINT", "", &c.S3Endpoint, "S3-compatible server (path-style), local only; unset in AWS"), "http://127.0.0.1:7070"),
			example(external("AWS_ACCESS_KEY_ID", "local only (read by the AWS SDK); in AWS the instance role is used"), "devstack"),
			example(external("AWS_SECRET_ACCESS_KEY", "local only (read by the AWS SDK)"), "devstack-secret"),
			positive("INGEST_WORKERS", 3, &c.IngestWorkers, "concurrent fetch+decode workers of /process-s3-data"),
			bytes("INGEST_MAX_FILE_BYTES", 256<<20, &c.IngestMaxFileBytes, "cap: decompressed bytes of one ingested file (a full readsb-hist snapshot is ~5 MB); over it the file is quarantined"),
			positive("INGEST_MAX_STRING_BYTES", 64, &c.IngestMaxStringBytes, "cap: bytes of a kept string of a file (hex, r, t, emergency; real ones are 4-10)"),
			positive("INGEST_MAX_AIRCRAFT_PER_FILE", 100_000, &c.IngestMaxAircraftPerFile, "cap: distinct addresses in one file (a full snapshot has ~10,000)"),
			positive("INGEST_MAX_DEPTH", 32, &c.IngestMaxDepth, "cap: nesting of arrays and objects in one file (real files: 4)"),
			seconds("INGEST_MAX_DECODE_SECONDS", 60*time.Second, &c.IngestMaxDecodeTime, "cap: time to decode one file, not counting waits for S3; over it the file is quarantined"),
			seconds("S3_STALL_SECONDS", 30*time.Second, &c.S3Stall, "S3 sending no byte of an object for this long is S3 unavailable: the run stops, the file is read again by the next run"),
		),
		group("Backfills (POST /api/v1/backfills)",
			positive("BACKFILL_MAX_RUNNING", 1, &c.BackfillMaxRunning, "backfills running at once across all instances; more answer 429"),
			positive("BACKFILL_BATCH_SIZE", 100, &c.BackfillBatchSize, "keys per batch, at most 200 (a batch is committed whole or not at all)"),
			positive("BACKFILL_CONCURRENCY", 2, &c.BackfillConcurrency, "batches of a backfill at once: in-process, each with INGEST_WORKERS workers; on Step Functions, the map's MaxConcurrency"),
			positive("BACKFILL_RETRIES", 3, &c.BackfillRetries, "retries of a batch whose dependency (S3, PostgreSQL) failed, then the batch is listed as failed"),
			seconds("BACKFILL_RETRY_SECONDS", 2*time.Second, &c.BackfillRetryWait, "wait before a batch's first retry, doubled at each"),
			positive("BACKFILL_TOLERATED_FAILURE_PERCENT", 5, &c.BackfillToleratedPercent, "a backfill fails when more than this share of its batches failed (judged on the batches ended once 20 have, then on all)"),
			text("BACKFILL_STATE_MACHINE_ARN", "", &c.BackfillStateMachineARN, "Step Functions state machine that runs backfills; unset: they run in this process"),
			positive("BACKFILL_COST_MICROUSD_PER_GB", 230, &c.BackfillCostPerGB, "estimated cost: Lambda time per GB ingested, micro-USD (docs/ingestion.md)"),
			positive("BACKFILL_COST_MICROUSD_PER_1000_FILES", 400, &c.BackfillCostPer1000Files, "estimated cost: S3 GETs per 1,000 files, micro-USD"),
			positive("BACKFILL_COST_MICROUSD_PER_BATCH", 75, &c.BackfillCostPerBatch, "estimated cost: Step Functions state transitions per batch, micro-USD"),
		),
		group("MongoDB (file records of lane downloads)",
			local(example(text("MONGODB_URL", "", &c.MongoURL, "Mongo URI; unset: the lane file endpoints answer 503"), "mongodb://127.0.0.1:27017")),
			text("MONGODB_URL_SECRET_ARN", "", &c.MongoURLSecretARN, "or read it from Secrets Manager: a mongodb:// URI or a DocumentDB JSON secret"),
			text("MONGODB_APP_SECRET_ARN", "", &c.MongoAppSecretARN, "secret {username,password} of the service's own user: connected as the master (above), aircraftd creates or updates that user (readWrite on MONGODB_DB_NAME), then serves as it"),
			boolean("MONGODB_ALLOW_PLAINTEXT", false, &c.MongoAllowPlaintext, "true: accept a MongoDB URI without TLS (tls=true, or mongodb+srv://) on a host beyond loopback; else the service refuses to start"),
			local(text("MONGODB_DB_NAME", "s3_files", &c.MongoDBName, "database of the file records")),
			local(text("MONGODB_COLLECTION", "file_records", &c.MongoCollection, "collection of the file records")),
			example(text("MONGODB_TLS_CA_FILE", "", &c.MongoTLSCAFile, "CA bundle of DocumentDB's certificate"), "/etc/aircraft/rds-ca.pem"),
			positive("MONGODB_READ_MAX_CONNS", 2, &c.MongoReadMaxConns, "connections of the client that serves GET /api/v1/files, apart from the downloads' (claims, records)"),
		),
		group("Downloads",
			local(text("DOWNLOAD_PATH", "./downloads", &c.DownloadPath, "root folder of lane downloads")),
			positive("DOWNLOAD_WORKERS", 4, &c.DownloadWorkers, "files fetched at once across all download requests of the process (large ones in parallel ranges each)"),
			seconds("DOWNLOAD_CLAIM_LEASE_SECONDS", 2*time.Minute, &c.DownloadClaimLease, "a download holds its lane hour this long without renewal (renewed every third of it; at least 3): after a lost instance, another takes the hour over once it runs out"),
			seconds("DOWNLOAD_WAIT_SECONDS", time.Minute, &c.DownloadWait, "a synchronous download of an hour that another download holds waits this long (woken when it ends, no job slot held), then answers 409 with Retry-After; ?async=true never waits"),
			seconds("DOWNLOAD_STALL_SECONDS", 2*time.Minute, &c.DownloadStall, "a download with files under way and no byte written nor file ended this long (S3 or the disk hung) gives its hour up: its files fail, the claim goes at once"),
			bytes("DOWNLOAD_RESERVE_BYTES", 1<<30, &c.DownloadReserve, "free space each file must leave on DOWNLOAD_PATH's file system (files being written counted as written); else the file fails, nothing written"),
			bytes("DOWNLOAD_MAX_OBJECT_BYTES", 16<<30, &c.DownloadMaxObject, "cap: an object bigger than this fails, nothing written"),
			boolean("DOWNLOAD_FSYNC", true, &c.DownloadFsync, "sync each file and its folder before it counts as downloaded; false only for scratch copies (a power loss can leave a renamed file of zeros)"),
		),
	)
}

func group(name string, ss ...Setting) []Setting {
	for i := range ss {
		ss[i].Group = name
	}
	return ss
}

func local(s Setting) Setting { s.Local = true; return s }

func example(s Setting, v string) Setting { s.Example = v; return s }

// external is a variable the service's libraries read (listed for completeness).
func external(name, doc string) Setting { return Setting{Name: name, Doc: doc} }

func text(name, def string, p *string, doc string) Setting {
	return Setting{Name: name, Default: def, Doc: doc, set: func(v string) error { *p = v; return nil }}
}

func boolean(name string, def bool, p *bool, doc string) Setting {
	return Setting{Name: name, Default: strconv.FormatBool(def), Doc: doc, set: func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*p = b
		return nil
	}}
}

func positive(name string, def int, p *int, doc string) Setting {
	return Setting{Name: name, Default: strconv.Itoa(def), Doc: doc, set: func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return errors.New("want a positive whole number")
		}
		*p = n
		return nil
	}}
}

func seconds(name string, def time.Duration, p *time.Duration, doc string) Setting {
	var n int
	s := positive(name, int(def/time.Second), &n, doc)
	parse := s.set
	s.set = func(v string) error {
		err := parse(v)
		*p = time.Duration(n) * time.Second
		return err
	}
	return s
}

func minutes(name string, def time.Duration, p *time.Duration, doc string) Setting {
	var n int
	s := positive(name, int(def/time.Minute), &n, doc)
	parse := s.set
	s.set = func(v string) error {
		err := parse(v)
		*p = time.Duration(n) * time.Minute
		return err
	}
	return s
}

func list(name string, p *[]string, doc string) Setting {
	return Setting{Name: name, Doc: doc, set: func(v string) error {
		*p = nil
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				*p = append(*p, o)
			}
		}
		return nil
	}}
}

// bytes is a size in the Go runtime's GOMEMLIMIT syntax: a whole number of bytes with an optional unit (B, KiB, MiB,
// GiB, TiB), or "off".
func bytes(name string, def int64, p *int64, doc string) Setting {
	return Setting{Name: name, Default: strconv.FormatInt(def>>20, 10) + "MiB", Doc: doc, set: func(v string) error {
		if v == "off" {
			*p = math.MaxInt64
			return nil
		}
		num, shift := v, 0
		for i, unit := range []string{"TiB", "GiB", "MiB", "KiB", "B"} {
			if n, ok := strings.CutSuffix(v, unit); ok {
				num, shift = n, 10*(4-i)
				break
			}
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64>>shift {
			return errors.New("want a size such as 100MiB (units B, KiB, MiB, GiB, TiB) or off")
		}
		*p = n << shift
		return nil
	}}
}
