// Package config reads the service's settings from the environment
// (12-factor). Every variable is listed in .env.example at the repository
// root. Names from the seed projects (DB_HOST …, S3_BUCKET, MONGODB_URL …,
// DOWNLOAD_PATH) keep their meaning.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
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

	APIToken          string
	APITokenSecretARN string

	DatabaseURL   string
	DBSecretARN   string
	db            dbParts
	AWSRegion     string
	S3Bucket      string
	S3Endpoint    string
	SourceBucket  string
	IngestWorkers int
	ShutdownGrace time.Duration

	MongoURL          string
	MongoURLSecretARN string
	MongoDBName       string
	MongoCollection   string
	MongoTLSCAFile    string
	DownloadPath      string
	DownloadWorkers   int
	DownloadFsync     bool // sync each file (and its folder) to disk before it counts as downloaded

	CORSAllowOrigins []string
	LogLevel         string
}

type dbParts struct {
	host, port, user, password, name, sslmode, sslrootcert string
}

// Load reads the configuration through getenv (os.Getenv in production).
func Load(getenv func(string) string) (*Config, error) {
	env := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	var errs []error
	number := func(key string, def int) int {
		v := env(key, "")
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive whole number", key, v))
		}
		return n
	}
	boolean := func(key string, def bool) bool {
		v := env(key, strconv.FormatBool(def))
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", key, v))
		}
		return b
	}
	c := &Config{
		HTTPAddr:          env("HTTP_ADDR", ":8443"),
		RedirectAddr:      env("REDIRECT_ADDR", ""),
		TLSCertFile:       env("TLS_CERT_FILE", ""),
		TLSKeyFile:        env("TLS_KEY_FILE", ""),
		TLSDisable:        boolean("TLS_DISABLE", false),
		ACMEDomain:        env("ACME_DOMAIN", ""),
		ACMEEmail:         env("ACME_EMAIL", ""),
		ACMECacheDir:      env("ACME_CACHE_DIR", "acme-cache"),
		APIToken:          env("API_TOKEN", ""),
		APITokenSecretARN: env("API_TOKEN_SECRET_ARN", ""),
		DatabaseURL:       env("DATABASE_URL", ""),
		DBSecretARN:       env("DB_SECRET_ARN", ""),
		db: dbParts{
			host: env("DB_HOST", ""), port: env("DB_PORT", "5432"),
			user: env("DB_USER", ""), password: env("DB_PASSWORD", ""),
			name: env("DB_NAME", "aircraft_db"), sslmode: env("DB_SSLMODE", "prefer"),
			sslrootcert: env("DB_SSLROOTCERT", ""),
		},
		AWSRegion:         env("AWS_REGION", "us-east-1"),
		S3Bucket:          env("S3_BUCKET", ""),
		S3Endpoint:        env("S3_ENDPOINT", ""),
		IngestWorkers:     number("INGEST_WORKERS", 3),
		ShutdownGrace:     time.Duration(number("SHUTDOWN_GRACE_SECONDS", 20)) * time.Second,
		MongoURL:          env("MONGODB_URL", ""),
		MongoURLSecretARN: env("MONGODB_URL_SECRET_ARN", ""),
		MongoDBName:       env("MONGODB_DB_NAME", "s3_files"),
		MongoCollection:   env("MONGODB_COLLECTION", "file_records"),
		MongoTLSCAFile:    env("MONGODB_TLS_CA_FILE", ""),
		DownloadPath:      env("DOWNLOAD_PATH", "./downloads"),
		DownloadWorkers:   number("DOWNLOAD_WORKERS", 4),
		DownloadFsync:     boolean("DOWNLOAD_FSYNC", true),
		LogLevel:          env("LOG_LEVEL", "info"),
	}
	c.SourceBucket = env("SOURCE_BUCKET", c.S3Bucket)
	for _, o := range strings.Split(env("CORS_ALLOW_ORIGINS", ""), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.CORSAllowOrigins = append(c.CORSAllowOrigins, o)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE and TLS_KEY_FILE go together"))
	}
	if c.TLSDisable && (c.TLSCertFile != "" || c.ACMEDomain != "") {
		errs = append(errs, errors.New("TLS_DISABLE=true conflicts with TLS_CERT_FILE/ACME_DOMAIN"))
	}
	return c, errors.Join(errs...)
}

// DBSecret is the JSON secret RDS generates for a database.
type DBSecret struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Host     string `json:"host"`
	Port     any    `json:"port"` // RDS writes a number, other tools a string
	DBName   string `json:"dbname"`
}

// ApplyDBSecret fills the database settings from a secret.
func (c *Config) ApplyDBSecret(s DBSecret) {
	c.db.user, c.db.password = s.Username, s.Password
	if s.Host != "" {
		c.db.host = s.Host
	}
	if s.Port != nil {
		c.db.port = fmt.Sprint(s.Port)
	}
	if s.DBName != "" {
		c.db.name = s.DBName
	}
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
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(c.db.user, c.db.password),
		Host:     net.JoinHostPort(c.db.host, c.db.port),
		Path:     "/" + c.db.name,
		RawQuery: q.Encode(),
	}
	return u.String(), nil
}

// MongoSecret is the JSON secret DocumentDB generates.
type MongoSecret struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Host     string `json:"host"`
	Port     any    `json:"port"`
}

// MongoURLFromSecret turns a secret value into a connection URI: the value
// is either a URI itself or a DocumentDB JSON secret. DocumentDB needs TLS
// and does not support retryable writes.
func MongoURLFromSecret(value string, parse func([]byte, any) error) (string, error) {
	value = strings.TrimSpace(value)
	if strings.HasPrefix(value, "mongodb://") || strings.HasPrefix(value, "mongodb+srv://") {
		return value, nil
	}
	var s MongoSecret
	if err := parse([]byte(value), &s); err != nil || s.Host == "" {
		return "", errors.New("mongo secret is neither a mongodb:// URI nor a JSON secret with host, username and password")
	}
	port := "27017"
	if s.Port != nil {
		port = fmt.Sprint(s.Port)
	}
	u := url.URL{
		Scheme:   "mongodb",
		User:     url.UserPassword(s.Username, s.Password),
		Host:     net.JoinHostPort(s.Host, port),
		Path:     "/",
		RawQuery: "tls=true&replicaSet=rs0&readPreference=secondaryPreferred&retryWrites=false",
	}
	return u.String(), nil
}
