// Package config owns the service's settings: every environment variable aircraftd reads (12-factor), with its name,
// default, meaning and parsing, in one table (settings.go), and the secrets that fill some of them. `.env.example` and
// the settings table of docs/CONTRACT.md are rendered from that table and checked against it by this package's tests
// (go test ./internal/config -update rewrites them). Names from the seed projects (DB_HOST …, S3_BUCKET, MONGODB_URL …,
// DOWNLOAD_PATH) keep their meaning.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/aircraftdata/platform/app/internal/readsb"
)

// Config is the service's configuration.
type Config struct {
	HTTPAddr     string
	RedirectAddr string
	TLSCertFile  string
	TLSKeyFile   string
	TLSDisable   bool
	ACMEDomain   string
	ACMEEmail    string
	ACMECacheDir string
	MetricsAddr  string // the metrics listener; "off": none
	MetricsToken string // bearer token of the metrics listener; required off loopback

	APIToken          string
	APITokenSecretARN string

	DatabaseURL    string
	DBSecretARN    string
	DBAppSecretARN string
	DBApp          Credentials // the service's own role (DB_APP_SECRET_ARN); zero: it serves as the master
	DBIAMAuth      bool
	DBWorkerUser   string // the worker's role (DB_WORKER_USER), made by aircraftd; empty: none
	db             dbParts
	AWSRegion      string
	S3Bucket       string
	S3Endpoint     string
	SourceBucket   string
	IngestWorkers  int
	// Caps on what one ingested file may cost; a file over one is quarantined with a reason naming the cap
	// (docs/ingestion.md).
	IngestMaxFileBytes       int64         // decompressed bytes
	IngestMaxStringBytes     int           // bytes of a kept string (hex, r, t, emergency)
	IngestMaxAircraftPerFile int           // distinct addresses
	IngestMaxDepth           int           // nesting of arrays and objects
	IngestMaxDecodeTime      time.Duration // decode, not counting waits for S3
	S3Stall                  time.Duration // no byte of an object from S3 for this long: S3 unavailable

	// Backfills (docs/ingestion.md "Backfills").
	BackfillMaxRunning       int
	BackfillBatchSize        int
	BackfillConcurrency      int
	BackfillRetries          int
	BackfillRetryWait        time.Duration
	BackfillToleratedPercent int
	BackfillStateMachineARN  string
	BackfillCostPerGB        int // micro-USD
	BackfillCostPer1000Files int // micro-USD
	BackfillCostPerBatch     int // micro-USD
	ShutdownGrace            time.Duration

	ReadToken        string        // bearer token(s) for the listing GETs that reveal keys and paths
	RateLimit        int           // requests per second per client address
	RateLimitBurst   int           // …at once
	RateLimitClients int           // client addresses remembered by the limiter
	ReadMaxInFlight  int           // requests served at once (but POSTs, health, ready)
	ReadPageMax      int           // most items of a list's page
	ReadTimeout      time.Duration // time of one GET, and statement_timeout of the read pool
	ReadyRefresh     time.Duration // how often readiness checks the dependencies
	DBReadMaxConns   int           // connections of the read pool

	AuthDisable    bool          // every POST open: only when asked for explicitly
	TrustedProxies []string      // may set the client address with X-Forwarded-For
	JobsMaxRunning int           // background jobs running at once; more answer 429
	JobsKeep       int           // finished jobs kept for polling…
	JobsKeepFor    time.Duration // …and for at most this long
	JobsLease      time.Duration // a running job whose instance stops renewing this long is failed "instance lost"

	MemoryLimit int64 // GOMEMLIMIT, bytes; the runtime reads the variable itself, aircraftd applies the default

	MongoURL            string
	MongoURLSecretARN   string
	MongoAppSecretARN   string
	MongoApp            Credentials // the service's own user (MONGODB_APP_SECRET_ARN); zero: it serves as the URI's
	MongoAllowPlaintext bool        // a URI without TLS may name a host beyond loopback
	MongoDBName         string
	MongoCollection     string
	MongoTLSCAFile      string
	MongoReadMaxConns   int // connections of the file list's client
	DownloadPath        string
	DownloadWorkers     int
	DownloadFsync       bool // sync each file (and its folder) to disk before it counts as downloaded
	// DownloadClaimLease is how long a download's claim on its hour holds without renewal: how long the hour of a lost
	// instance waits.
	DownloadClaimLease time.Duration
	DownloadWait       time.Duration // a synchronous download waits this long for an hour held by another
	DownloadStall      time.Duration // a download without progress this long gives its hour up
	DownloadReserve    int64         // free bytes each file must leave on DOWNLOAD_PATH's file system
	DownloadMaxObject  int64         // bytes: bigger objects are refused

	CORSAllowOrigins []string
	LogLevel         string
}

// minDownloadClaimLease is the shortest DOWNLOAD_CLAIM_LEASE_SECONDS: a renewal every second, with a second to answer.
const minDownloadClaimLease = 3 * time.Second

type dbParts struct {
	host, port, user, password, name, sslmode, sslrootcert string
}

// Load reads the configuration through getenv (os.Getenv in production): every setting of the table, then the rules
// that tie settings together.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{}
	var errs []error
	for _, s := range c.settings() {
		if s.set == nil {
			continue // read by the Go runtime or the AWS SDK, not by us
		}
		v := strings.TrimSpace(getenv(s.Name))
		if v == "" {
			v = s.Default
		}
		if err := s.set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", s.Name, v, err))
		}
	}
	if c.SourceBucket == "" {
		c.SourceBucket = c.S3Bucket
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %q is neither an IP address nor a CIDR range", p))
		}
	}
	if c.DownloadClaimLease < minDownloadClaimLease {
		errs = append(errs, fmt.Errorf("DOWNLOAD_CLAIM_LEASE_SECONDS: at least %d (the claim is renewed every third of it, each renewal given that third)", int(minDownloadClaimLease/time.Second)))
	}
	if c.DBIAMAuth && (c.db.host == "" || c.db.user == "" || c.db.sslmode != "verify-full" || c.DatabaseURL != "" || c.DBSecretARN != "") {
		errs = append(errs, errors.New("DB_IAM_AUTH=true needs DB_HOST, DB_USER and DB_SSLMODE=verify-full, without DATABASE_URL or DB_SECRET_ARN"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE and TLS_KEY_FILE go together"))
	}
	if c.MetricsAddr != "off" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR=%q: want host:port or off: %w", c.MetricsAddr, err))
		} else if !Loopback(c.MetricsAddr) && c.MetricsToken == "" {
			errs = append(errs, fmt.Errorf("METRICS_ADDR=%q listens beyond this host: set METRICS_TOKEN (a bearer token every scrape must send), or keep it on 127.0.0.1", c.MetricsAddr))
		}
	}
	if c.DBIAMAuth && c.DBAppSecretARN != "" {
		errs = append(errs, errors.New("DB_IAM_AUTH=true and DB_APP_SECRET_ARN do not go together (the IAM user is the role)"))
	}
	if c.TLSDisable && (c.TLSCertFile != "" || c.ACMEDomain != "") {
		errs = append(errs, errors.New("TLS_DISABLE=true conflicts with TLS_CERT_FILE/ACME_DOMAIN"))
	}
	return c, errors.Join(errs...)
}

// Defaults is the configuration with no variable set: every setting at its default. Packages take their settings as
// values and do not restate these defaults; a test that wants a package set up as the service runs by default takes the
// values from here.
func Defaults() *Config {
	c, err := Load(func(string) string { return "" })
	if err != nil {
		panic("config: the defaults do not load: " + err.Error())
	}
	return c
}

// PostgresURL is DATABASE_URL, or a URL built from the DB_* settings.
func (c *Config) PostgresURL() (string, error) {
	if c.DatabaseURL != "" && c.DBSecretARN == "" {
		return c.DatabaseURL, nil
	}
	if c.db.host == "" {
		return "", errors.New("no database configured: set DATABASE_URL, DB_HOST/DB_USER/DB_PASSWORD or DB_SECRET_ARN")
	}
	q := url.Values{"sslmode": {c.db.sslmode}}
	if c.db.sslrootcert != "" {
		q.Set("sslrootcert", c.db.sslrootcert)
	}
	user := url.UserPassword(c.db.user, c.db.password)
	if c.DBIAMAuth {
		user = url.User(c.db.user) // the password is a token made for each connection (DBIAMAuthEndpoint)
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     user,
		Host:     net.JoinHostPort(c.db.host, c.db.port),
		Path:     "/" + c.db.name,
		RawQuery: q.Encode(),
	}
	return u.String(), nil
}

// DBIAMAuthEndpoint is the database's host:port and the user that IAM database auth tokens are made for (DB_IAM_AUTH).
func (c *Config) DBIAMAuthEndpoint() (endpoint, user string) {
	return net.JoinHostPort(c.db.host, c.db.port), c.db.user
}

// IngestLimits are the caps of one ingested file (the INGEST_MAX_* settings), as aircraftd and the ingestion worker
// both decode with them.
func (c *Config) IngestLimits() readsb.Limits {
	return readsb.Limits{
		MaxBytes: c.IngestMaxFileBytes, MaxString: c.IngestMaxStringBytes, MaxAircraft: c.IngestMaxAircraftPerFile,
		MaxDepth: c.IngestMaxDepth, MaxDecodeTime: c.IngestMaxDecodeTime,
	}
}

// APITokens are the tokens of API_TOKEN (or of the secret API_TOKEN_SECRET_ARN names, once resolved): a list, comma or
// white space separated, so that a new token can be added before the old one is removed.
func (c *Config) APITokens() []string { return tokenList(c.APIToken) }

// ReadTokens are the tokens of READ_TOKEN, a list of the same form.
func (c *Config) ReadTokens() []string { return tokenList(c.ReadToken) }

func tokenList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// Loopback reports whether the listener address addr (host:port) accepts connections from this host only: its host is a
// loopback IP or localhost. An empty host (":9464") listens on every interface.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
