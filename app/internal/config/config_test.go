package config

import (
	"encoding/json"
	"strings"
	"testing"
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
		!c.DownloadFsync || c.DownloadWorkers != 4 {
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
	var s DBSecret
	if err := json.Unmarshal([]byte(`{"username":"postgres","password":"s3cr/t","host":"h.rds.amazonaws.com","port":5432,"dbname":"aircraft_db","engine":"postgres"}`), &s); err != nil {
		t.Fatal(err)
	}
	c.ApplyDBSecret(s)
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

func TestCORSOrigins(t *testing.T) {
	c, _ := Load(env(map[string]string{"CORS_ALLOW_ORIGINS": " https://a.example , ,https://b.example"}))
	if len(c.CORSAllowOrigins) != 2 || c.CORSAllowOrigins[1] != "https://b.example" {
		t.Errorf("got %q", c.CORSAllowOrigins)
	}
}

func TestMongoURLFromSecret(t *testing.T) {
	if u, err := MongoURLFromSecret(" mongodb://a:b@h:27017/?tls=true ", json.Unmarshal); err != nil || u != "mongodb://a:b@h:27017/?tls=true" {
		t.Errorf("plain URI: %s %v", u, err)
	}
	u, err := MongoURLFromSecret(`{"username":"app","password":"p/w","host":"docdb.cluster","port":27017}`, json.Unmarshal)
	if err != nil {
		t.Fatal(err)
	}
	if u != "mongodb://app:p%2Fw@docdb.cluster:27017/?tls=true&replicaSet=rs0&readPreference=secondaryPreferred&retryWrites=false" {
		t.Errorf("DocumentDB secret: %s", u)
	}
	if _, err := MongoURLFromSecret("not a uri", json.Unmarshal); err == nil {
		t.Error("garbage accepted")
	}
}
