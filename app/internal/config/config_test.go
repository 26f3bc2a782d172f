package config

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAndSeedNames(t *testing.T) {
	c, err := Load(env(map[string]string{
		"DB_HOST": "db.internal", "DB_USER": "u", "DB_PASSWORD": "p@ss word", "S3_BUCKET": "aircraft-data",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8443" || c.TLSDisable || c.MongoDBName != "s3_files" || c.MongoCollection != "file_records" ||
		c.SourceBucket != "aircraft-data" || c.DownloadPath != "./downloads" || c.AWSRegion != "us-east-1" ||
		!c.DownloadFsync || c.DownloadWorkers != 4 || c.AuthDisable || len(c.TrustedProxies) != 0 ||
		c.JobsMaxRunning != 32 || c.JobsKeep != 100 || c.JobsKeepFor != time.Hour {
		t.Errorf("defaults: %+v", c)
	}
	u, err := c.PostgresURL()
	if err != nil {
		t.Fatal(err)
	}
	if u != "postgres://u:p%40ss%20word@db.internal:5432/aircraft_db?sslmode=prefer" {
		t.Errorf("url from DB_* = %s", u)
	}
}

// Defaults are the settings with nothing set: the values the packages that take them (ingest, readsb, download, jobs)
// get when nothing is configured.
func TestDefaults(t *testing.T) {
	c := Defaults()
	if c.IngestWorkers != 3 || c.IngestMaxFileBytes != 256<<20 || c.IngestMaxStringBytes != 64 || c.IngestMaxAircraftPerFile != 100_000 ||
		c.IngestMaxDepth != 32 || c.IngestMaxDecodeTime != time.Minute || c.DownloadWorkers != 4 || c.DownloadClaimLease != 2*time.Minute ||
		c.JobsMaxRunning != 32 || c.JobsKeep != 100 || c.JobsKeepFor != time.Hour || c.JobsLease != 30*time.Second {
		t.Errorf("defaults: %+v", c)
	}
}

func TestDatabaseURLWins(t *testing.T) {
	c, _ := Load(env(map[string]string{"DATABASE_URL": "postgres://x/y", "DB_HOST": "ignored"}))
	if u, _ := c.PostgresURL(); u != "postgres://x/y" {
		t.Errorf("got %s", u)
	}
}

func TestNoDatabase(t *testing.T) {
	c, _ := Load(env(nil))
	if _, err := c.PostgresURL(); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("want an error naming the settings, got %v", err)
	}
}

func TestRDSSecret(t *testing.T) {
	c, _ := Load(env(map[string]string{"DB_SECRET_ARN": "arn:x", "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": "/etc/aircraft/rds-ca.pem"}))
	var s dbSecret
	if err := json.Unmarshal([]byte(`{"username":"postgres","password":"s3cr/t","host":"h.rds.amazonaws.com","port":5432,"dbname":"aircraft_db","engine":"postgres"}`), &s); err != nil {
		t.Fatal(err)
	}
	c.applyDBSecret(s)
	u, err := c.PostgresURL()
	if err != nil {
		t.Fatal(err)
	}
	want := "postgres://postgres:s3cr%2Ft@h.rds.amazonaws.com:5432/aircraft_db?sslmode=verify-full&sslrootcert=%2Fetc%2Faircraft%2Frds-ca.pem"
	if u != want {
		t.Errorf("got  %s\nwant %s", u, want)
	}
}

func TestInvalidSettings(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"half a key pair": {"TLS_CERT_FILE": "c.pem"},
		"bad bool":        {"TLS_DISABLE": "maybe"},
		"bad fsync":       {"DOWNLOAD_FSYNC": "sometimes"},
		"bad number":      {"INGEST_WORKERS": "-1"},
		"plain with cert": {"TLS_DISABLE": "true", "TLS_CERT_FILE": "c", "TLS_KEY_FILE": "k"},
		"bad proxy":       {"TRUSTED_PROXIES": "10.0.0.0/8, proxy.example"},
		"no jobs":         {"JOBS_MAX_RUNNING": "0"},
		"short claim":     {"DOWNLOAD_CLAIM_LEASE_SECONDS": "2"},
		"bad auth switch": {"AUTH_DISABLE": "please"},
	} {
		if _, err := Load(env(m)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDownloadFsyncOff(t *testing.T) {
	c, err := Load(env(map[string]string{"DOWNLOAD_FSYNC": "false"}))
	if err != nil || c.DownloadFsync {
		t.Errorf("DOWNLOAD_FSYNC=false: fsync %v, %v", c.DownloadFsync, err)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := Load(env(map[string]string{"TRUSTED_PROXIES": "10.0.0.0/16, 192.0.2.7"}))
	if err != nil || len(c.TrustedProxies) != 2 || c.TrustedProxies[0] != "10.0.0.0/16" {
		t.Errorf("got %q, %v", c.TrustedProxies, err)
	}
}

func TestCORSOrigins(t *testing.T) {
	c, _ := Load(env(map[string]string{"CORS_ALLOW_ORIGINS": " https://a.example , ,https://b.example"}))
	if len(c.CORSAllowOrigins) != 2 || c.CORSAllowOrigins[1] != "https://b.example" {
		t.Errorf("got %q", c.CORSAllowOrigins)
	}
}

func TestMongoURLFromSecret(t *testing.T) {
	if u, err := mongoURLFromSecret(" mongodb://a:b@h:27017/?tls=true "); err != nil || u != "mongodb://a:b@h:27017/?tls=true" {
		t.Errorf("plain URI: %s %v", u, err)
	}
	u, err := mongoURLFromSecret(`{"username":"app","password":"p/w","host":"docdb.cluster","port":27017}`)
	if err != nil {
		t.Fatal(err)
	}
	if u != "mongodb://app:p%2Fw@docdb.cluster:27017/?tls=true&replicaSet=rs0&readPreference=secondaryPreferred&retryWrites=false" {
		t.Errorf("DocumentDB secret: %s", u)
	}
	if _, err := mongoURLFromSecret("not a uri"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestResolveSecrets(t *testing.T) {
	c, err := Load(env(map[string]string{
		"DB_SECRET_ARN": "arn:db", "MONGODB_URL_SECRET_ARN": "arn:mongo", "API_TOKEN_SECRET_ARN": "arn:token",
		"DATABASE_URL": "postgres://ignored/when-a-secret-is-named",
	}))
	if err != nil || !c.HasSecrets() {
		t.Fatalf("load: %v, has secrets %v", err, c.HasSecrets())
	}
	secrets := map[string]string{
		"arn:db":    `{"username":"u","password":"p","host":"db.rds","port":"6543","dbname":"stats"}`,
		"arn:mongo": "mongodb://m:w@docdb:27017/?tls=true",
		"arn:token": " t0ken\n",
	}
	get := func(_ context.Context, arn string) (string, error) { return secrets[arn], nil }
	if err := c.ResolveSecrets(t.Context(), get); err != nil {
		t.Fatal(err)
	}
	if u, _ := c.PostgresURL(); u != "postgres://u:p@db.rds:6543/stats?sslmode=prefer" {
		t.Errorf("database URL from the secret: %s", u)
	}
	if c.MongoURL != "mongodb://m:w@docdb:27017/?tls=true" || c.APIToken != "t0ken" {
		t.Errorf("mongo %q, token %q", c.MongoURL, c.APIToken)
	}

	failing := func(context.Context, string) (string, error) { return "", errors.New("access denied") }
	if err := c.ResolveSecrets(t.Context(), failing); err == nil || !strings.Contains(err.Error(), "arn:db") {
		t.Errorf("a secret that cannot be read: %v; want an error naming it", err)
	}
}

func TestSizesAndDurations(t *testing.T) {
	for v, want := range map[string]int64{"": 100 * 1024 * 1024, "512MiB": 512 * 1024 * 1024, "1GiB": 1024 * 1024 * 1024, "4096": 4096, "2KiB": 2048} {
		c, err := Load(env(map[string]string{"GOMEMLIMIT": v}))
		if err != nil || c.MemoryLimit != want {
			t.Errorf("GOMEMLIMIT=%q: %d, %v; want %d", v, c.MemoryLimit, err, want)
		}
	}
	for _, v := range []string{"100MB", "-1", "lots"} {
		if _, err := Load(env(map[string]string{"GOMEMLIMIT": v})); err == nil {
			t.Errorf("GOMEMLIMIT=%q accepted", v)
		}
	}
	c, err := Load(env(map[string]string{"SHUTDOWN_GRACE_SECONDS": "45"}))
	if err != nil || c.ShutdownGrace != 45*time.Second {
		t.Errorf("SHUTDOWN_GRACE_SECONDS=45: %v, %v", c.ShutdownGrace, err)
	}
	if c, _ := Load(env(nil)); c.ShutdownGrace != 20*time.Second || c.IngestWorkers != 3 {
		t.Errorf("defaults: grace %v, ingest workers %d", c.ShutdownGrace, c.IngestWorkers)
	}
}

func TestDownloadClaimLease(t *testing.T) {
	if c, err := Load(env(nil)); err != nil || c.DownloadClaimLease != 2*time.Minute {
		t.Errorf("default: %v, %v", c.DownloadClaimLease, err)
	}
	if c, err := Load(env(map[string]string{"DOWNLOAD_CLAIM_LEASE_SECONDS": "3"})); err != nil || c.DownloadClaimLease != 3*time.Second {
		t.Errorf("DOWNLOAD_CLAIM_LEASE_SECONDS=3: %v, %v", c.DownloadClaimLease, err)
	}
}

// TestMetricsAddrFailsClosed: the metrics listener beyond loopback needs a token; on loopback, or off, it does not.
func TestMetricsAddrFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"", "", true}, // the default, 127.0.0.1:9464
		{"127.0.0.1:9999", "", true},
		{"[::1]:9464", "", true},
		{"localhost:9464", "", true},
		{"off", "", true},
		{":9464", "", false}, // every interface
		{"0.0.0.0:9464", "", false},
		{"10.0.1.5:9464", "", false},
		{"[::]:9464", "", false},
		{":9464", "s3cret", true},
		{"9464", "", false}, // no host:port
	} {
		c, err := Load(env(map[string]string{"METRICS_ADDR": tc.addr, "METRICS_TOKEN": tc.token}))
		if (err == nil) != tc.ok {
			t.Errorf("METRICS_ADDR=%q METRICS_TOKEN=%q: error %v, want ok=%v", tc.addr, tc.token, err, tc.ok)
		}
		if tc.addr == "" && err == nil && c.MetricsAddr != "127.0.0.1:9464" {
			t.Errorf("default METRICS_ADDR %q", c.MetricsAddr)
		}
	}
}
