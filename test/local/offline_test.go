package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aircraftdata/platform/infra/appbuild"
)

func TestDBSettings(t *testing.T) {
	got, err := DBSettings("postgres://aircraft:s3cret@127.0.0.1:5433/e2e_0a1b?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"DB_HOST": "127.0.0.1", "DB_PORT": "5433", "DB_USER": "aircraft", "DB_PASSWORD": "s3cret",
		"DB_NAME": "e2e_0a1b", "DB_SSLMODE": "disable"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if got, _ := DBSettings("postgresql://u:p@db.example.org/x"); got["DB_PORT"] != "5432" || got["DB_SSLMODE"] != "" {
		t.Errorf("defaults: %v", got)
	}
	for _, bad := range []string{"mysql://u:p@h/db", "postgres:///db", "postgres://h/db", "::"} {
		if _, err := DBSettings(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBuildServiceHonoursTheOverride(t *testing.T) {
	// AIRCRAFTD_BINARY: that file, built by nobody here.
	root := t.TempDir()
	bin := filepath.Join(root, "prebuilt")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(appbuild.BinaryOverrideEnv, bin)
	if got, err := BuildService(root, t.TempDir()); err != nil || got != bin {
		t.Errorf("override: %q %v", got, err)
	}
	t.Setenv(appbuild.BinaryOverrideEnv, filepath.Join(root, "missing"))
	if _, err := BuildService(root, t.TempDir()); err == nil {
		t.Error("a missing override was accepted")
	}
}

// The run's environment is the instance's with the local stand-ins: nothing that names a secret or an instance path is
// left, and what the instance sets beyond those reaches the run unchanged.
func TestServiceEnvIsTheInstancesWithLocalStandIns(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	s := &Stack{DatabaseURL: "postgres://u:p@127.0.0.1:5432/e2e_x?sslmode=disable", Bucket: "e2e-x",
		S3Endpoint: "http://127.0.0.1:7070", MongoURL: "mongodb://127.0.0.1:27017", MongoDB: "e2e_x"}
	env, err := s.ServiceEnv("127.0.0.1:9443", "tok", "/w/downloads", "/w/cert.pem", "/w/key.pem")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"HTTP_ADDR": "127.0.0.1:9443", "TLS_CERT_FILE": "/w/cert.pem", "TLS_KEY_FILE": "/w/key.pem", "API_TOKEN": "tok",
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
		"S3_ENDPOINT": "http://127.0.0.1:7070", "S3_BUCKET": "e2e-x",
		"DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_USER": "u", "DB_PASSWORD": "p", "DB_NAME": "e2e_x", "DB_SSLMODE": "disable",
		"MONGODB_URL": "mongodb://127.0.0.1:27017", "MONGODB_DB_NAME": "e2e_x", "DOWNLOAD_PATH": "/w/downloads",
		"RATE_LIMIT_PER_SECOND": "100000", "RATE_LIMIT_BURST": "100000",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	for k, v := range env {
		if strings.Contains(v, "/etc/aircraft") || strings.Contains(v, "/var/lib/aircraft") || strings.HasSuffix(k, "_SECRET_ARN") {
			t.Errorf("%s=%q: the instance's, not this run's", k, v)
		}
	}
}
